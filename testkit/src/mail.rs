//! Identities and sealed envelopes for tests, on the wall clock.

use std::time::{SystemTime, UNIX_EPOCH};

use tern_protocol::{Envelope, Identity};

/// Seconds since the Unix epoch.
pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A fresh identity.
pub fn identity() -> Identity {
    Identity::generate(&mut rand::rng(), now_s() * 1000)
}

/// A sealed envelope from `sender` to `recipient`, expiring in an hour.
pub fn envelope(sender: &Identity, recipient: &Identity, text: &[u8]) -> Envelope {
    Envelope::seal(
        sender,
        recipient.public(),
        text,
        now_s() + 3600,
        &mut rand::rng(),
    )
    .unwrap()
}

/// The envelope a stranger's first message to the owner of `to` is: a new session started from `to`
/// (their card) carrying `body`, sealed, as its bytes.
pub fn first_message(
    stranger: &Identity,
    to: &tern_protocol::ContactCard,
    body: tern_protocol::Body,
    now_ms: u64,
) -> Vec<u8> {
    let mut rng = rand::rng();
    let card = tern_protocol::ContactCard::issue(
        stranger,
        tern_protocol::CardDetails {
            display_name: "Stranger".into(),
            revision: now_ms,
            ..Default::default()
        },
    )
    .unwrap();
    let content = tern_protocol::Content {
        id: tern_protocol::MessageId::new_v7(now_ms, &mut rng),
        sent_at_ms: now_ms,
        body,
    };
    let mut sessions = tern_protocol::PeerSessions::new(stranger.key(), to.key());
    let sealed = sessions
        .encrypt(
            stranger,
            &card,
            Some(to),
            &content.encode().unwrap(),
            &mut rng,
        )
        .unwrap();
    Envelope::seal(
        stranger,
        to.identity(),
        &sealed,
        now_ms / 1000 + 3600,
        &mut rng,
    )
    .unwrap()
    .encode()
}
