//! Random send / deliver / drop / reorder / duplicate schedules between Alice and Bob. Properties:
//! every message delivered for the first time decrypts to what was sent, every repeat is refused, nothing
//! panics, and afterwards the pair still converges on one session and talks both ways.

mod common;

use common::{Pair, Side};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Send(Side),
    /// Deliver the in-flight message at this (wrapped) index: any index means reordering.
    Deliver(usize),
    Drop(usize),
    /// Deliver an already delivered message again.
    Replay(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => prop_oneof![Just(Side::Alice), Just(Side::Bob)].prop_map(Step::Send),
        4 => any::<usize>().prop_map(Step::Deliver),
        1 => any::<usize>().prop_map(Step::Drop),
        1 => any::<usize>().prop_map(Step::Replay),
    ]
}

struct InFlight {
    to: Side,
    text: String,
    bytes: Vec<u8>,
}

fn run(seed: u64, steps: &[Step]) -> Result<(), TestCaseError> {
    let mut p = Pair::new(seed);
    let mut in_flight: Vec<InFlight> = Vec::new();
    let mut delivered: Vec<InFlight> = Vec::new();
    let mut counter = 0u32;
    for step in steps {
        match *step {
            Step::Send(from) => {
                counter += 1;
                let text = format!("{from:?} #{counter}");
                let (_, bytes) = p.send_session(from, &text);
                in_flight.push(InFlight {
                    to: from.other(),
                    text,
                    bytes,
                });
            }
            Step::Deliver(i) if !in_flight.is_empty() => {
                let msg = in_flight.remove(i % in_flight.len());
                let content = p.receive_session(msg.to, &msg.bytes);
                prop_assert!(
                    content.is_ok(),
                    "first delivery of {:?} failed: {:?}",
                    msg.text,
                    content
                );
                let content = content.unwrap();
                prop_assert_eq!(Pair::text_of(&content), msg.text.as_str());
                delivered.push(msg);
            }
            Step::Drop(i) if !in_flight.is_empty() => {
                in_flight.remove(i % in_flight.len());
            }
            Step::Replay(i) if !delivered.is_empty() => {
                let msg = &delivered[i % delivered.len()];
                let again = p.receive_session(msg.to, &msg.bytes);
                prop_assert!(again.is_err(), "replay of {:?} decrypted twice", msg.text);
            }
            _ => {}
        }
    }
    // Everything still in flight arrives, newest first.
    while let Some(msg) = in_flight.pop() {
        let content = p.receive_session(msg.to, &msg.bytes);
        prop_assert!(
            content.is_ok(),
            "late delivery of {:?} failed: {:?}",
            msg.text,
            content
        );
    }
    // The pair is intact: two round trips settle both sides on one session, both ways.
    for round in 0..2 {
        for from in [Side::Alice, Side::Bob] {
            let text = format!("final {round} from {from:?}");
            let (_, bytes) = p.send_session(from, &text);
            let content = p.receive_session(from.other(), &bytes);
            prop_assert!(content.is_ok(), "{} failed: {:?}", text, content);
        }
    }
    prop_assert_eq!(
        p.alice.sessions.active_session(),
        p.bob.sessions.active_session()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_schedules_deliver_each_message_exactly_once(seed in any::<u64>(), steps in prop::collection::vec(step(), 1..1500)) {
        run(seed, &steps)?;
    }
}
