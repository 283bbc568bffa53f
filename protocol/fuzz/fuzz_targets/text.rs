//! Text protocol: any bytes, parsed as a connection would, never panic and
//! every request re-encodes to itself.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::check_text(data);
});
