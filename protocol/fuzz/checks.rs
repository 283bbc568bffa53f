#![allow(dead_code)] // each fuzz target uses only the check for its own protocol
//! Invariants every parser must keep on any input. Shared by the cargo-fuzz
//! targets (which run them on generated input) and by the corpus replay test
//! (which runs them on every checked-in input under `cargo test`).

use segcore_protocol::{binary, text, Limits, ParseError, Recovery};

/// Small limits so the fuzzer reaches the "too large" and "line too long"
/// paths with short inputs; inputs of odd length run with flushing
/// disabled (`-F`), and inputs whose length is a multiple of three with
/// little room for values (the server's out-of-memory refusal), so every
/// configuration is explored.
pub fn limits_for(data: &[u8]) -> Limits {
    Limits {
        max_value_len: 64,
        max_line_len: 128,
        max_get_line_len: 512,
        flush_enabled: data.len().is_multiple_of(2),
        value_room: if data.len().is_multiple_of(3) {
            16
        } else {
            usize::MAX
        },
    }
}

/// Feeds `data` through `parse` the way a connection does: take requests,
/// follow each error's recovery, stop when more bytes are needed or the
/// connection would close. Checks progress, bounds and the round trip
/// `parse(encode(r)) == r` for each request. Returns how many requests
/// parsed.
fn drive<'a, R: PartialEq + std::fmt::Debug>(
    data: &'a [u8],
    parse: impl Fn(&'a [u8]) -> Result<Option<(R, usize)>, ParseError>,
    round_trip: impl Fn(&R),
) -> usize {
    let mut at = 0;
    let mut parsed = 0;
    while at < data.len() {
        match parse(&data[at..]) {
            Ok(Some((request, used))) => {
                assert!(used > 0 && at + used <= data.len(), "used {used}");
                round_trip(&request);
                parsed += 1;
                at += used;
            }
            Ok(None) => break,
            Err(e) => {
                let mut reply = Vec::new();
                e.write_reply(&mut reply);
                assert!(reply.len() < 256, "error replies are short");
                match e.recovery {
                    Recovery::Skip(n) => {
                        assert!(n > 0, "skip must make progress");
                        at = at.saturating_add(n);
                    }
                    Recovery::Close => break,
                }
            }
        }
    }
    parsed
}

/// Text and meta commands.
pub fn check_text(data: &[u8]) -> usize {
    let limits = limits_for(data);
    drive(
        data,
        |buf| text::parse(buf, &limits),
        |request| {
            // ASCII authentication reads a set's data as credentials: any
            // bytes parse or are refused, and what parses came from them.
            if let text::Request::Store(store) = request {
                if let Some(c) = segcore_protocol::auth::ascii_credentials(store.value) {
                    assert_eq!(c.user.len() + 1 + c.password.len(), store.value.len());
                }
            }
            let mut encoded = Vec::new();
            request.encode(&mut encoded);
            match text::parse(&encoded, &limits) {
                Ok(Some((again, used))) => {
                    assert_eq!(&again, request);
                    assert_eq!(used, encoded.len());
                }
                other => panic!("re-encoded {request:?} as {encoded:?} parsed as {other:?}"),
            }
        },
    )
}

/// Binary packets.
pub fn check_binary(data: &[u8]) -> usize {
    let limits = limits_for(data);
    drive(
        data,
        |buf| binary::parse(buf, &limits),
        |request| {
            // SASL PLAIN reads an Auth's value: three NUL-separated fields.
            if let Some(c) = segcore_protocol::auth::sasl_plain(request.value) {
                assert!(c.user.len() + c.password.len() + 2 <= request.value.len());
            }
            let mut encoded = Vec::new();
            request.encode(&mut encoded);
            let (again, used) = binary::parse(&encoded, &limits)
                .expect("re-encoded request parses")
                .expect("re-encoded request is complete");
            assert_eq!(&again, request);
            assert_eq!(used, encoded.len());
        },
    )
}
