//! Bob's `PeerSessions::decrypt` from a fixed established session, and the bytes as an envelope to Bob.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../protocol/tests/fuzz_checks/mod.rs"]
mod checks;

fuzz_target!(
    init: {
        checks::Fixture::get();
    },
    |data: &[u8]| {
        checks::session_decrypt(data);
    }
);
