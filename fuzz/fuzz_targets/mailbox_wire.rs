//! Every decoder of `/tern/mailbox/1` and `/tern/envelope/1` frames and payloads (tern-node), on the same
//! bytes: what decodes must re-encode to them, and the streaming reader must agree with the buffer decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../node/tests/fuzz_checks/mod.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::mailbox_wire(data);
});
