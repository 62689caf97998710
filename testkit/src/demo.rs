//! Demo profiles for the desktop app's screenshots and frame benchmark (`tern-gui`'s `tern-gui-demo`
//! example): real sealed envelopes exchanged between engines (no network), and older history written
//! straight into the store with earlier dates so the day separators show.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use rand::RngExt;
use tern_node::api::{Message, MessageStatus};
use tern_node::engine::{Engine, now_ms};
use tern_node::settings::NetworkSettings;
use tern_node::store::{KdfParams, Password};
use tern_protocol::{IdentityKey, MessageId};

/// The demo profiles' password.
pub const DEMO_PASSWORD: &str = "tern demo password";

fn password() -> Password {
    Password::new(DEMO_PASSWORD.to_owned())
}

/// Sends `text` from one engine to the other: sealed, opened, stored, acknowledged.
fn deliver(from: &mut Engine, to: &mut Engine, text: &str) -> Result<Message> {
    let to_key = to.key();
    let (message, entry) = from.send_text(&to_key, text)?;
    to.receive(&entry.envelope)?;
    from.delivered(&entry, MessageStatus::Delivered)?;
    Ok(message)
}

/// `reader` reads everything from `writer` and the read receipts reach `writer`.
fn read_all(reader: &mut Engine, writer: &mut Engine) -> Result<()> {
    let key = writer.key();
    let page = reader.store().conversation_page(key, None, 500)?;
    let ids: Vec<MessageId> = page
        .messages
        .iter()
        .filter(|m| !m.outgoing() && m.status == MessageStatus::Received)
        .map(|m| m.id)
        .collect();
    reader.mark_read(&key, &ids)?;
    for entry in reader.outbox_due(now_ms() + 1, 64)? {
        writer.receive(&entry.envelope)?;
        reader.delivered(&entry, MessageStatus::Sent)?;
    }
    Ok(())
}

fn history(engine: &mut Engine, with: IdentityKey, lines: &[(bool, u64, &str)]) -> Result<()> {
    let mut rng = rand::rng();
    for (outgoing, ago_ms, text) in lines {
        let at = now_ms() - ago_ms;
        engine.store_mut().insert_message(&read_message(
            MessageId::new_v7(at, &mut rng),
            with,
            *outgoing,
            at,
            text,
        ))?;
    }
    Ok(())
}

/// A read message of a 1:1 conversation with `with`, written at `at_ms`.
pub fn read_message(
    id: MessageId,
    with: IdentityKey,
    outgoing: bool,
    at_ms: u64,
    text: &str,
) -> Message {
    Message {
        id,
        conversation: with.into(),
        sender: (!outgoing).then_some(with),
        system: false,
        sent_at_ms: at_ms,
        received_at_ms: at_ms,
        text: text.to_owned(),
        status: MessageStatus::Read,
        recipients: Vec::new(),
        reply_to: None,
        attachment: None,
    }
}

/// Writes Alice's demo profile under `root` (the others' beside it, under `root/../demo-peers`): four
/// contacts, conversations with delivery and read receipts, older history with earlier dates, a verified
/// contact and a bootstrap node in the settings. The password is [`DEMO_PASSWORD`].
pub fn populate(root: &Path) -> Result<()> {
    if root.join("Alice").exists() {
        bail!("{} already holds a demo profile", root.display());
    }
    let peers = root
        .parent()
        .ok_or_else(|| anyhow!("the root needs a parent directory"))?
        .join("demo-peers");
    std::fs::create_dir_all(root)?;
    std::fs::create_dir_all(&peers)?;
    let kdf = KdfParams::RFC9106_SECOND;
    let mut alice = Engine::create(&root.join("Alice"), "Alice", &password(), kdf)?;
    let mut others = Vec::new();
    for name in ["Bob", "Carol", "Dave", "Erin"] {
        let mut e = Engine::create(&peers.join(name), name, &password(), kdf)?;
        alice.add_contact(&e.card().invite_link(), None)?;
        e.add_contact(&alice.card().invite_link(), None)?;
        others.push(e);
    }
    let [bob, carol, dave, erin] = &mut others[..] else {
        bail!("four demo peers");
    };
    let bob_key = bob.key();
    let day = 24 * 3600 * 1000;
    history(
        &mut alice,
        bob_key,
        &[
            (false, 3 * day, "Did you see the photos from the hike?"),
            (
                true,
                3 * day - 60_000,
                "Yes! The view from the ridge was unreal.",
            ),
            (
                false,
                day + 3_600_000,
                "Are we still on for the climbing gym this week?",
            ),
            (true, day + 3_500_000, "Thursday works for me. 7pm?"),
            (false, day + 3_400_000, "Perfect, I'll book the wall."),
        ],
    )?;
    deliver(
        bob,
        &mut alice,
        "Morning! I found the rope you lent me, I'll bring it Thursday.",
    )?;
    deliver(&mut alice, bob, "No rush. Did the new shoes fit?")?;
    deliver(
        bob,
        &mut alice,
        "Half a size too small, I'm swapping them today.\nThe shop is open till 6.",
    )?;
    deliver(
        bob,
        &mut alice,
        "My cousin's postcard from the trip: héllo 世界 مرحبا 👋 Привет こんにちは 안녕하세요 Γειά σου",
    )?;
    read_all(bob, &mut alice)?;
    read_all(&mut alice, bob)?;
    deliver(
        &mut alice,
        bob,
        "Good luck! Send me a picture of the new ones.",
    )?;
    read_all(bob, &mut alice)?;
    deliver(
        &mut alice,
        bob,
        "Also: lunch on Friday? The ramen place opened again.",
    )?;

    deliver(
        carol,
        &mut alice,
        "The draft of the talk is in your inbox, have a look when you can.",
    )?;
    deliver(
        carol,
        &mut alice,
        "Slides 12-15 still need the benchmark numbers.",
    )?;
    deliver(dave, &mut alice, "Board game night at mine on Saturday?")?;
    deliver(&mut alice, dave, "Count me in!")?;
    deliver(
        erin,
        &mut alice,
        "Thanks for the recommendation, the book was great.",
    )?;
    read_all(&mut alice, erin)?;
    // Alice verified Bob in person.
    let number = alice.safety_number(&bob_key);
    alice.verify(&bob_key, number.digits())?;
    // A community bootstrap node in the settings (a documentation address: the demo never dials it).
    let mut settings = NetworkSettings::default();
    settings
        .bootstrap
        .push(tern_node::settings::parse_server_addr(
            "/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
        )?);
    settings.save(alice.store_mut())?;
    Ok(())
}

/// A profile named "Bench" under `root` with one contact ("Peer") and a conversation of `messages` read
/// messages of one to 24 words, a minute apart (with `emoji`, a third of the words are emoji, sequences
/// among them, so nearly every message has some). Returns the profile's directory and the contact's key.
pub fn long_conversation(
    root: &Path,
    messages: usize,
    kdf: KdfParams,
    emoji: bool,
) -> Result<(PathBuf, IdentityKey)> {
    let dir = root.join("Bench");
    let mut engine = Engine::create(&dir, "Bench", &password(), kdf)?;
    let peer = Engine::create(&root.join("peer"), "Peer", &password(), kdf)?;
    let peer_key = peer.key();
    engine.add_contact(&peer.card().invite_link(), None)?;
    drop(peer);
    let mut rng = rand::rng();
    let start = now_ms() - messages as u64 * 60_000;
    let words = [
        "lunch",
        "tomorrow",
        "the train",
        "is late",
        "again",
        "see you",
        "at the",
        "station",
    ];
    let with_emoji = [
        "lunch",
        "👋",
        "tomorrow",
        "the train",
        "🚆",
        "is late",
        "again 😅",
        "see you",
        "👨‍👩‍👧",
        "at the",
        "station",
        "🇫🇷 👍🏽",
    ];
    let words: &[&str] = if emoji { &with_emoji } else { &words };
    for chunk in 0..messages.div_ceil(10_000) {
        let mut batch = engine.store_mut().batch()?;
        for i in chunk * 10_000..((chunk + 1) * 10_000).min(messages) {
            let at = start + i as u64 * 60_000;
            let n = 1 + rng.random_range(0..24usize);
            let text: Vec<&str> = (0..n).map(|k| words[(i + k) % words.len()]).collect();
            batch.insert_message(&read_message(
                MessageId::new_v7(at, &mut rng),
                peer_key,
                i % 3 == 0,
                at,
                &text.join(" "),
            ))?;
        }
        batch.commit()?;
    }
    Ok((dir, peer_key))
}
