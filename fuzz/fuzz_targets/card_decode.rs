//! `ContactCard::decode`, and `ContactCard::from_invite_link` when the bytes are UTF-8.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../protocol/tests/fuzz_checks/mod.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::card_decode(data);
});
