//! Meta commands: the input is prefixed with `m` so nearly every line the
//! fuzzer makes is a meta command, and the flags parser gets the attention.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut line = Vec::with_capacity(data.len() + 1);
    line.push(b'm');
    line.extend_from_slice(data);
    checks::check_text(&line);
});
