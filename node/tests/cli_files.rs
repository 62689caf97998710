//! `tern-node send-file`, `files` and `save-file` between two processes: the file arrives whole, its
//! progress and arrival show as JSON lines in `run --json`, and it is saved byte for byte.

use std::path::Path;

use tern_testkit::cli::Cli;

const BIN: &str = env!("CARGO_BIN_EXE_tern-node");
const PASSWORD: &str = "a long and silly passphrase";

fn cli(profile: &Path) -> Cli {
    Cli::new(BIN, profile, PASSWORD)
}

#[test]
fn a_file_sent_from_the_shell_is_received_listed_and_saved_byte_for_byte() {
    let alice = tempfile::tempdir().unwrap();
    let bob = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let alice_invite = cli(alice.path()).init_invite("Alice");
    let bob_invite = cli(bob.path()).init_invite("Bob");
    cli(alice.path()).ok(&["contact", "add", &bob_invite]);
    cli(bob.path()).ok(&["contact", "add", &alice_invite]);

    // 3 MiB and a bit of bytes that are not all alike.
    let bytes: Vec<u8> = (0..3 * 1024 * 1024 + 4321u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let source = scratch.path().join("report.bin");
    std::fs::write(&source, &bytes).unwrap();

    let bob_run = cli(bob.path()).spawn(&[
        "run",
        "--lan-only",
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
    ]);
    let listening = bob_run.wait_json("bob's listen address", |v| v["event"] == "listening");
    let addr = listening["address"].as_str().unwrap().to_owned();
    let sent = cli(alice.path()).ok(&[
        "send-file",
        "Bob",
        source.to_str().unwrap(),
        "--wait",
        "60",
        "--lan-only",
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--peer",
        &addr,
    ]);
    let result = sent.last().unwrap();
    assert_eq!(result["status"], "fetched", "{sent:?}");
    assert_eq!(result["size"], bytes.len() as u64);
    assert_eq!(result["metadata_stripped"], false);

    let offered = bob_run.wait_json("the offer", |v| v["event"] == "file-offered");
    assert_eq!(offered["file"]["name"], "report.bin");
    assert_eq!(offered["file"]["size"], bytes.len() as u64);
    let id = offered["id"].as_str().unwrap().to_owned();
    let done = bob_run.wait_json("the file", |v| v["event"] == "file-received");
    assert_eq!(done["id"], id.as_str());

    // A photo: its location is stripped before it leaves, and the shell says so.
    let photo = scratch.path().join("holiday.jpg");
    std::fs::write(&photo, jpeg_with_gps()).unwrap();
    let sent = cli(alice.path()).ok(&[
        "send-file",
        "Bob",
        photo.to_str().unwrap(),
        "--wait",
        "60",
        "--lan-only",
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--peer",
        &addr,
    ]);
    assert_eq!(sent[0]["event"], "metadata-stripped", "{sent:?}");
    assert_eq!(sent.last().unwrap()["metadata_stripped"], true);
    bob_run.wait_json("the photo", |v| {
        v["event"] == "file-received" && v["id"] != id.as_str()
    });
    bob_run.quit();

    let files = cli(bob.path()).ok(&["files"]);
    assert_eq!(files.len(), 2);
    let report = files.iter().find(|f| f["id"] == id.as_str()).unwrap();
    assert_eq!(report["state"], "complete");
    assert_eq!(report["direction"], "in");
    assert_eq!(report["contact"], "Alice");
    assert_eq!(report["name"], "report.bin");

    let dest = scratch.path().join("saved.bin");
    cli(bob.path()).ok(&["save-file", &id, dest.to_str().unwrap()]);
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);

    // Saving again onto the same path is refused unless asked.
    let again = cli(bob.path())
        .command(&["save-file", &id, dest.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stdout).contains("exists already"));
    cli(bob.path()).ok(&["save-file", &id, dest.to_str().unwrap(), "--overwrite"]);
}

/// A minimal JPEG with an EXIF GPS block, built by hand.
fn jpeg_with_gps() -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    let jfif = b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0";
    out.extend_from_slice(&[0xFF, 0xE0, 0, (jfif.len() + 2) as u8]);
    out.extend_from_slice(jfif);
    let exif =
        b"Exif\0\0MM\0*\0\0\0\x08\0\x01\x88\x25\0\x04\0\0\0\x01\0\0\0\x1aGPS-51.5007N-0.1246W";
    out.extend_from_slice(&[0xFF, 0xE1, 0, (exif.len() + 2) as u8]);
    out.extend_from_slice(exif);
    out.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0x3F, 0]);
    out.extend_from_slice(&[0x12, 0x34, 0x56, 0xFF, 0x00, 0x78]);
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}
