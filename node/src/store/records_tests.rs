//! Tests of the record encodings: round trips, older versions, bounds and bad bytes.

use super::*;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use tern_protocol::Identity;

pub(crate) fn key(seed: u64) -> IdentityKey {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    Identity::generate(&mut rng, 0).key()
}

#[test]
fn records_round_trip_and_reject_trailing_bytes() {
    let contact = ContactRecord {
        key: key(1),
        card: vec![1, 2, 3],
        local_name: "Ålice".into(),
        verified: true,
        state: ContactState::Requested,
        key_changed: false,
        added_ms: 42,
    };
    let bytes = contact.encode().unwrap();
    assert_eq!(ContactRecord::decode(&bytes).unwrap(), contact);
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        ContactRecord::decode(&long),
        Err(DecodeError::TrailingBytes(1))
    );

    let message = MessageRecord {
        id: MessageId([7; 16]),
        conversation: key(2).into(),
        outgoing: false,
        sender: Some(key(2)),
        system: false,
        sent_at_ms: 1,
        received_at_ms: 2,
        text: "hi".into(),
        status: MessageStatus::Received,
        timer_s: 300,
        expires_at_ms: 9,
        delivered_at_ms: 10,
        read_at_ms: 11,
        recipients: Vec::new(),
        reply_to: None,
    };
    assert_eq!(
        MessageRecord::decode(&message.encode().unwrap()).unwrap(),
        message
    );
    // Version 3 (no receipt times) still reads, with none known.
    let v4 = message.encode().unwrap();
    let mut v3 = v4[..v4.len() - 16].to_vec();
    v3[0] = 3;
    let old = MessageRecord::decode(&v3).unwrap();
    assert_eq!((old.timer_s, old.expires_at_ms), (300, 9));
    assert_eq!((old.delivered_at_ms, old.read_at_ms), (0, 0));
    // Version 2 (no timer) still reads, as a message that stays.
    let mut v2 = v3[..v3.len() - 12].to_vec();
    v2[0] = 2;
    let old = MessageRecord::decode(&v2).unwrap();
    assert_eq!((old.timer_s, old.expires_at_ms), (0, 0));
    assert_eq!(old.text, message.text);
    v2[0] = MESSAGE_RECORD_VERSION + 1;
    assert!(matches!(
        MessageRecord::decode(&v2),
        Err(DecodeError::UnsupportedVersion { .. })
    ));
    v3[0] = 4;
    assert!(
        MessageRecord::decode(&v3).is_err(),
        "a version 4 record cut short"
    );
    // A group's system lines, about a member's action and about this profile's.
    for sender in [Some(key(3)), None] {
        let line = MessageRecord {
            conversation: ConversationId::Group([5; 32]),
            outgoing: sender.is_none(),
            sender,
            system: true,
            ..message.clone()
        };
        assert_eq!(
            MessageRecord::decode(&line.encode().unwrap()).unwrap(),
            line
        );
    }
    // A 1:1 conversation's system lines (a timer change) are the contact's or this profile's; no
    // other sender.
    for (sender, system) in [(Some(key(2)), true), (None, true)] {
        let line = MessageRecord {
            outgoing: sender.is_none(),
            sender,
            system,
            ..message.clone()
        };
        assert_eq!(
            MessageRecord::decode(&line.encode().unwrap()).unwrap(),
            line
        );
    }
    for system in [false, true] {
        let bad = MessageRecord {
            sender: Some(key(3)),
            system,
            ..message.clone()
        };
        assert!(MessageRecord::decode(&bad.encode().unwrap()).is_err());
    }
    assert!(!format!("{message:?}").contains("hi\""));

    let outbox = OutboxRecord {
        message_id: MessageId([8; 16]),
        recipient: key(3),
        envelope: vec![9; 300],
        attempts: 2,
        next_attempt_ms: 3,
        created_ms: 4,
        expires_at: 5,
    };
    assert_eq!(
        OutboxRecord::decode(&outbox.encode().unwrap()).unwrap(),
        outbox
    );
}

/// An outgoing message of `conversation` being sent, with no timer, times, members or quote.
fn outgoing(conversation: ConversationId) -> MessageRecord {
    MessageRecord {
        id: MessageId([7; 16]),
        conversation,
        outgoing: true,
        sender: None,
        system: false,
        sent_at_ms: 1,
        received_at_ms: 2,
        text: String::new(),
        status: MessageStatus::Sending,
        timer_s: 0,
        expires_at_ms: 0,
        delivered_at_ms: 0,
        read_at_ms: 0,
        recipients: Vec::new(),
        reply_to: None,
    }
}

#[test]
fn statuses_and_replies_are_kept_in_version_5_and_other_records_stay_version_4() {
    let plain = MessageRecord {
        text: "hi".into(),
        status: MessageStatus::Sent,
        ..outgoing(ConversationId::Group([5; 32]))
    };
    assert_eq!(plain.encode().unwrap()[0], 4, "no statuses: version 4");
    let with = MessageRecord {
        recipients: vec![
            RecipientStatus {
                member: key(3),
                status: MessageStatus::Read,
                at_ms: 40,
            },
            RecipientStatus {
                member: key(4),
                status: MessageStatus::Sent,
                at_ms: 0,
            },
        ],
        ..plain.clone()
    };
    let bytes = with.encode().unwrap();
    assert_eq!(bytes[0], 5);
    assert_eq!(MessageRecord::decode(&bytes).unwrap(), with);
    assert!(
        MessageRecord::decode(&bytes[..bytes.len() - 1]).is_err(),
        "cut short"
    );
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        MessageRecord::decode(&long),
        Err(DecodeError::TrailingBytes(1))
    );
    // Only an outgoing group message has statuses: a 1:1 one or an incoming one is refused.
    for bad in [
        MessageRecord {
            conversation: key(2).into(),
            ..with.clone()
        },
        MessageRecord {
            outgoing: false,
            sender: Some(key(3)),
            ..with.clone()
        },
    ] {
        assert!(matches!(
            MessageRecord::decode(&bad.encode().unwrap()),
            Err(DecodeError::Invalid {
                field: "recipients",
                ..
            })
        ));
    }
    // A reply keeps the message it answers, in any conversation, with or without statuses.
    for reply in [
        MessageRecord {
            conversation: key(2).into(),
            outgoing: false,
            sender: Some(key(2)),
            reply_to: Some(MessageId([6; 16])),
            ..plain.clone()
        },
        MessageRecord {
            reply_to: Some(MessageId([6; 16])),
            ..with.clone()
        },
    ] {
        let bytes = reply.encode().unwrap();
        assert_eq!(bytes[0], 5);
        assert_eq!(MessageRecord::decode(&bytes).unwrap(), reply);
    }
    let mut flag = MessageRecord {
        reply_to: None,
        ..with.clone()
    }
    .encode()
    .unwrap();
    *flag.last_mut().unwrap() = 2;
    assert!(matches!(
        MessageRecord::decode(&flag),
        Err(DecodeError::Invalid {
            field: "has reply",
            ..
        })
    ));
    let too_many = MessageRecord {
        recipients: vec![with.recipients[0]; MAX_RECIPIENTS + 1],
        ..plain
    };
    assert!(matches!(
        too_many.encode(),
        Err(StoreError::TooLong {
            field: "recipients",
            ..
        })
    ));
}

#[test]
fn bounds_and_bad_bytes_are_typed_errors() {
    let message = MessageRecord {
        text: "a".repeat(MAX_TEXT_LEN + 1),
        ..outgoing(key(2).into())
    };
    assert!(matches!(
        message.encode(),
        Err(StoreError::TooLong { field: "text", .. })
    ));
    let mut bytes = MessageRecord {
        text: String::new(),
        ..message
    }
    .encode()
    .unwrap();
    bytes[50] = 9; // the `has sender` flag
    assert!(matches!(
        MessageRecord::decode(&bytes),
        Err(DecodeError::Invalid {
            field: "has sender",
            ..
        })
    ));
    bytes[0] = 9;
    assert!(matches!(
        MessageRecord::decode(&bytes),
        Err(DecodeError::UnsupportedVersion { got: 9, .. })
    ));
}

#[test]
fn statuses_never_move_backwards() {
    use MessageStatus::*;
    assert!(Sending.can_become(Sent, true));
    assert!(Sent.can_become(Read, true));
    assert!(!Read.can_become(Delivered, true));
    assert!(Failed.can_become(Sending, true));
    assert!(Received.can_become(Read, false));
    assert!(!Read.can_become(Received, false));
    assert!(!Received.can_become(Delivered, false));
}
