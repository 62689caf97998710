//! `Identity::unpickle` and `PeerSessions::unpickle` under a fixed key, on the bytes and on them sealed.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../protocol/tests/fuzz_checks/mod.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::pickle_open(data);
});
