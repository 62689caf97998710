//! `RangeRequest::decode` (`/tern/file/1`); what decodes must re-encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../protocol/tests/fuzz_checks/mod.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::file_request(data);
});
