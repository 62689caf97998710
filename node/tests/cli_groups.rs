//! `tern-node group …` end to end: Alice creates a group with Bob (who runs `run --json`), both talk, the
//! events and the lists show it.

use std::path::Path;

use tern_testkit::cli::Cli;

const BIN: &str = env!("CARGO_BIN_EXE_tern-node");
const PASSWORD: &str = "a long and silly passphrase";

fn cli(profile: &Path) -> Cli {
    Cli::new(BIN, profile, PASSWORD)
}

/// Network options of a one-shot command that dials `peer` on loopback.
fn net(peer: &str) -> Vec<&str> {
    vec![
        "--wait",
        "30",
        "--lan-only",
        "--no-mdns",
        "--peer",
        peer,
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
    ]
}

#[test]
fn a_group_is_created_joined_and_talked_in_through_the_binary() {
    let alice = tempfile::tempdir().unwrap();
    let bob = tempfile::tempdir().unwrap();
    let alice_invite = cli(alice.path()).init_invite("Alice");
    let bob_invite = cli(bob.path()).init_invite("Bob");
    cli(alice.path()).ok(&["contact", "add", &bob_invite]);
    cli(bob.path()).ok(&["contact", "add", &alice_invite, "--name", "Al"]);

    let mut bob_run = cli(bob.path()).spawn(&[
        "run",
        "--lan-only",
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
    ]);
    let listening = bob_run.wait_json("bob's listen address", |v| v["event"] == "listening");
    let addr = listening["address"].as_str().unwrap().to_owned();

    // Create: the command waits until Bob joined.
    let mut args = vec!["group", "create", "Climbing", "Bob"];
    args.extend(net(&addr));
    let created = cli(alice.path()).ok(&args);
    assert_eq!(created[0]["name"], "Climbing");
    assert_eq!(created[0]["members"], 2);
    assert_eq!(created[0]["role"], "creator");
    let joined = bob_run.wait_json("group-joined", |v| v["event"] == "group-joined");
    assert_eq!(joined["name"], "Climbing");
    assert_eq!(joined["added_by"], "Al");
    assert_eq!(joined["role"], "member");

    // Alice sends with `group send`; Bob's events name the group and the sender.
    let mut args = vec!["group", "send", "Climbing", "hello group"];
    args.extend(net(&addr));
    let sent = cli(alice.path()).ok(&args);
    assert_eq!(sent[0]["status"], "sent");
    let got = bob_run.wait_json("the group message", |v| {
        v["event"] == "message" && v["text"] == "hello group"
    });
    assert_eq!(got["sender"], "Al");
    assert_eq!(got["system"], false);
    assert_eq!(got["group"], joined["group"]);

    // Bob's stdin speaks group commands too.
    bob_run.command(r#"{"cmd":"group-members","group":"Climbing"}"#);
    let members = bob_run.wait_json("group-members", |v| v["ok"] == "group-members");
    let roles: Vec<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles.len(), 2);
    assert!(roles.contains(&"creator") && roles.contains(&"member"));
    bob_run.command(r#"{"cmd":"group-send","group":"Climbing","text":"hi back"}"#);
    bob_run.wait_json("group-send", |v| v["ok"] == "group-send");
    bob_run.command(r#"{"cmd":"group-rename","group":"Climbing","name":"x"}"#);
    let refused = bob_run.wait_json("a refusal", |v| v.get("error").is_some());
    assert!(
        refused["error"].as_str().unwrap().contains("admin"),
        "{refused}"
    );
    // `timer` takes a group's name too; a group's timer is its admins' to set.
    bob_run.command(r#"{"cmd":"timer","contact":"Climbing","seconds":3600}"#);
    let refused = bob_run.wait_json("a timer refusal", |v| v.get("error").is_some());
    assert!(
        refused["error"].as_str().unwrap().contains("admin"),
        "{refused}"
    );
    bob_run.quit();

    // Alice's lists.
    let groups = cli(alice.path()).ok(&["group", "list"]);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["members"], 2);
    let members = cli(alice.path()).ok(&["group", "members", "Climbing"]);
    assert_eq!(members.len(), 2);
    assert!(
        members
            .iter()
            .any(|m| m["name"] == "Bob" && m["role"] == "member")
    );
    let unknown = cli(alice.path())
        .command(&["group", "members", "Nope"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(1));
}

#[test]
fn a_stranger_joins_by_link_through_the_binary_and_a_revoked_link_is_gone() {
    let alice = tempfile::tempdir().unwrap();
    let kim = tempfile::tempdir().unwrap();
    cli(alice.path()).init_invite("Alice");
    // Kim is nobody's contact.
    cli(kim.path()).init_invite("Kim");
    let offline = [
        "--lan-only",
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
    ];
    let mut args = vec!["group", "create", "Hikers"];
    args.extend(offline);
    cli(alice.path()).ok(&args);
    let made = cli(alice.path()).ok(&["group", "link", "Hikers"]);
    let link = made[0]["link"].as_str().unwrap().to_owned();
    let id = made[0]["id"].as_str().unwrap().to_owned();
    assert!(link.starts_with("tern-group:"), "{link}");
    assert_eq!(made[0]["approval"], false);

    let run: Vec<&str> = ["run"].into_iter().chain(offline).collect();
    let alice_run = cli(alice.path()).spawn(&run);
    let listening = alice_run.wait_json("alice's listen address", |v| v["event"] == "listening");
    let addr = listening["address"].as_str().unwrap().to_owned();
    let mut args = vec!["group", "join", &link];
    args.extend(net(&addr));
    let joined = cli(kim.path()).ok(&args);
    assert_eq!(joined[0]["name"], "Hikers");
    assert_eq!(joined[0]["members"], 2);
    alice_run.wait_json("the group grew", |v| {
        v["event"] == "group-updated" && v["members"] == 2
    });
    alice_run.quit();

    let contacts = cli(kim.path()).ok(&["contact", "list"]);
    assert!(
        contacts.iter().any(|c| c["name"] == "Alice"),
        "{contacts:?}"
    );
    assert_eq!(cli(alice.path()).ok(&["group", "links", "Hikers"]).len(), 1);
    cli(alice.path()).ok(&["group", "revoke", "Hikers", &id]);
    assert!(
        cli(alice.path())
            .ok(&["group", "links", "Hikers"])
            .is_empty()
    );
    let own = cli(alice.path())
        .command(&["group", "join", &link])
        .output()
        .unwrap();
    assert_eq!(own.status.code(), Some(1));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&own.stdout),
        String::from_utf8_lossy(&own.stderr)
    );
    assert!(said.contains("a group you run"), "{said}");
}
