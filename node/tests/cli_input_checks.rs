//! What the `tern-node` binary refuses or warns about (issue 19, items 5 and 6): names that look alike or
//! hide characters, empty passwords, empty messages; and the modes of the files a profile is made of.

use std::path::Path;
use std::process::Output;

use tern_testkit::cli::{Cli, FAST_KDF, json_lines};

const BIN: &str = env!("CARGO_BIN_EXE_tern-node");
const PASSWORD: &str = "a long and silly passphrase";

fn cli(profile: &Path) -> Cli {
    Cli::new(BIN, profile, PASSWORD)
}

fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn invite(root: &Path, dir: &str, name: &str) -> String {
    cli(&root.join(dir)).init_invite(name)
}

#[test]
fn contact_names_are_checked_compared_without_case_and_lookalikes_are_flagged() {
    let root = tempfile::tempdir().unwrap();
    let me = root.path().join("me");
    cli(&me).init("Me");
    let bob = invite(root.path(), "bob", "Bob");
    let added = cli(&me).ok(&["contact", "add", &bob]);
    assert!(added[0].get("warning").is_none(), "{added:?}");

    // Hidden characters and controls given with --name are refused, and nothing is added.
    let others: Vec<String> = (0..4)
        .map(|n| invite(root.path(), &format!("o{n}"), &format!("Other{n}")))
        .collect();
    for (link, name) in others
        .iter()
        .zip(["Bo\u{200B}b", "Eve\u{202E}", "a\nb", "   "])
    {
        let out = cli(&me)
            .command(&["contact", "add", link, "--name", name])
            .output()
            .unwrap();
        let text = failed(&out);
        assert!(text.contains("name"), "{name:?}: {text}");
    }
    assert_eq!(cli(&me).ok(&["contact", "list"]).len(), 1);

    // "bob" is the same name as "Bob": refused, so `send Bob` can never match two contacts.
    let out = cli(&me)
        .command(&["contact", "add", &others[0], "--name", "bob"])
        .output()
        .unwrap();
    assert!(failed(&out).contains("already exists"));

    // "Bоb" with a Cyrillic о is another name, but it looks like Bob: added, with the warning, once.
    let added = cli(&me).ok(&["contact", "add", &others[1], "--name", "B\u{043E}b"]);
    assert_eq!(added[0]["looks_like"], "Bob", "{added:?}");
    assert!(added[0]["warning"].as_str().unwrap().contains("looks like"));
    let listed = cli(&me).ok(&["contact", "list"]);
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|c| c.get("warning").is_none()));

    // Names are trimmed and tidied rather than stored with stray spaces.
    let added = cli(&me).ok(&["contact", "add", &others[2], "--name", "  Ann   Lee "]);
    assert_eq!(added[0]["name"], "Ann Lee");
}

#[test]
fn init_refuses_a_name_with_a_newline_or_only_spaces() {
    let root = tempfile::tempdir().unwrap();
    for (n, name) in ["Ann\nLee", "   ", "\u{202E}Ann"].into_iter().enumerate() {
        let dir = root.path().join(n.to_string());
        let mut args = vec!["init", "--name", name];
        args.extend(FAST_KDF);
        let out = cli(&dir).command(&args).output().unwrap();
        assert!(failed(&out).contains("name"), "{name:?}");
        assert!(!dir.join("store.redb").exists());
    }
}

#[test]
fn empty_passwords_are_refused_unless_asked_for_in_so_many_words() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("p");
    let mut args = vec!["init", "--name", "Ann"];
    args.extend(FAST_KDF);
    let empty = Cli::new(BIN, &dir, "");
    let out = empty.command(&args).output().unwrap();
    assert!(failed(&out).contains("password is empty"));
    assert!(!dir.join("store.redb").exists());
    // With the flag it is the user's choice.
    let mut flagged = args.clone();
    flagged.push("--allow-empty-password");
    empty.ok(&flagged);
    empty.ok(&["whoami"]);

    // passwd to an empty password: refused, the old one still works.
    let other = root.path().join("q");
    cli(&other).init("Bea");
    let out = cli(&other)
        .command(&["passwd"])
        .env("TERN_NEW_PASSWORD", "")
        .output()
        .unwrap();
    assert!(failed(&out).contains("password is empty"));
    cli(&other).ok(&["whoami"]);
    let changed = cli(&other)
        .command(&["passwd", "--allow-empty-password"])
        .env("TERN_NEW_PASSWORD", "")
        .output()
        .unwrap();
    assert!(changed.status.success());
    Cli::new(BIN, &other, "").ok(&["whoami"]);
}

#[test]
fn an_empty_message_is_refused_and_nothing_is_queued() {
    let root = tempfile::tempdir().unwrap();
    let me = root.path().join("me");
    cli(&me).init("Me");
    let bob = invite(root.path(), "bob", "Bob");
    cli(&me).ok(&["contact", "add", &bob]);
    for text in ["", "   \n\t "] {
        let out = cli(&me)
            .command(&[
                "send",
                "Bob",
                text,
                "--wait",
                "0",
                "--lan-only",
                "--no-mdns",
            ])
            .output()
            .unwrap();
        assert!(failed(&out).contains("empty"), "{text:?}");
    }
    let inbox = json_lines(&cli(&me).command(&["inbox"]).output().unwrap().stdout);
    assert!(inbox.is_empty(), "{inbox:?}");
}

#[cfg(unix)]
#[test]
fn a_new_profile_is_private_to_its_user() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    // Parents the profile needs are made too, and private as well.
    let dir = root.path().join("tern").join("default");
    cli(&dir).init("Ann");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&root.path().join("tern")), 0o700);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    // A store made readable by others is made private again when it is opened.
    let store = dir.join("store.redb");
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o644)).unwrap();
    cli(&dir).ok(&["whoami"]);
    assert_eq!(mode(&store), 0o600);
}

#[test]
fn a_message_request_whose_name_looks_like_a_contacts_is_flagged() {
    let root = tempfile::tempdir().unwrap();
    let me = root.path().join("me");
    let my_invite = cli(&me).init_invite("Me");
    let bob = invite(root.path(), "bob", "Bob");
    cli(&me).ok(&["contact", "add", &bob]);
    // "Bоb" with a Cyrillic о writes to me; I never added them.
    let impostor = root.path().join("impostor");
    cli(&impostor).init("B\u{043E}b");
    cli(&impostor).ok(&["contact", "add", &my_invite]);

    let run = cli(&me).spawn(&[
        "run",
        "--lan-only",
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
    ]);
    let listening = run.wait_json("a listen address", |v| v["event"] == "listening");
    let addr = listening["address"].as_str().unwrap().to_owned();
    cli(&impostor).send_to_peer("Me", "it is me, Bob, new number", &addr);
    let request = run.wait_json("the request", |v| v["event"] == "contact-request");
    assert_eq!(request["looks_like"], "Bob", "{request}");
    assert!(
        request["warning"]
            .as_str()
            .is_some_and(|w| w.contains("looks like your contact")),
        "{request}"
    );
    run.quit();
}
