//! `ContactCard::from_invite_link` on the bytes as scanned text (a QR payload) and on `tern:` + base58 of the
//! bytes; a card that parses must give back its own link, QR payload and QR code.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../protocol/tests/fuzz_checks/mod.rs"]
mod checks;

fuzz_target!(
    init: {
        checks::Fixture::get();
    },
    |data: &[u8]| {
        checks::invite_link(data);
    }
);
