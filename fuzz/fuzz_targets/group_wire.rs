//! The group bodies of docs/protocol.md §18.4 (`tern_protocol::group_wire`); what decodes must re-encode to
//! the same bytes, and a decoded transfer part goes through a reassembly.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../protocol/tests/fuzz_checks/mod.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::group_wire(data);
});
