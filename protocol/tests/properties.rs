//! Property tests: encode -> parse round trips for every request kind, any
//! prefix of a valid pipeline is "incomplete" (never an error), and arbitrary
//! bytes never panic a parser or break its invariants.

#[path = "../fuzz/checks.rs"]
mod checks;

use proptest::prelude::*;
use segcore_protocol::binary::{self, Command, Opcode};
use segcore_protocol::text::{self, ArithOp, KeyList, Request, Retrieval, Store, StoreMode};
use segcore_protocol::Limits;

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop_oneof![0x21u8..0x7f, 0x80u8..=0xff], 1..=250)
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..300)
}

/// An owned description of a text request; [`TextSpec::request`] borrows it.
#[derive(Clone, Debug)]
enum TextSpec {
    Get(bool, Option<i32>, Vec<u8>),
    Store(usize, Vec<u8>, u32, i32, u64, Vec<u8>, bool),
    Delete(Vec<u8>, bool),
    Arith(bool, Vec<u8>, u64, bool),
    Touch(Vec<u8>, i32, bool),
    Flush(Option<i32>, bool),
    Verbosity(u32, bool),
    Stats(Vec<u8>),
    Simple(usize),
}

const STORE_MODES: [StoreMode; 6] = [
    StoreMode::Set,
    StoreMode::Add,
    StoreMode::Replace,
    StoreMode::Append,
    StoreMode::Prepend,
    StoreMode::Cas,
];

fn text_spec() -> impl Strategy<Value = TextSpec> {
    prop_oneof![
        (
            any::<bool>(),
            any::<Option<i32>>(),
            prop::collection::vec(key(), 1..8)
        )
            .prop_map(|(c, t, k)| TextSpec::Get(c, t, k.join(&b' '))),
        (
            0..6usize,
            key(),
            any::<u32>(),
            any::<i32>(),
            any::<u64>(),
            value(),
            any::<bool>()
        )
            .prop_map(|(m, k, f, e, c, v, n)| TextSpec::Store(m, k, f, e, c, v, n)),
        (key(), any::<bool>()).prop_map(|(k, n)| TextSpec::Delete(k, n)),
        (any::<bool>(), key(), any::<u64>(), any::<bool>())
            .prop_map(|(i, k, d, n)| TextSpec::Arith(i, k, d, n)),
        (key(), any::<i32>(), any::<bool>()).prop_map(|(k, e, n)| TextSpec::Touch(k, e, n)),
        (any::<Option<i32>>(), any::<bool>()).prop_map(|(d, n)| TextSpec::Flush(d, n)),
        (any::<u32>(), any::<bool>()).prop_map(|(l, n)| TextSpec::Verbosity(l, n)),
        prop::sample::select(vec![
            &b""[..],
            b"settings",
            b"slabs",
            b"detail dump",
            b"cores"
        ])
        .prop_map(|a| TextSpec::Stats(a.to_vec())),
        (0..4usize).prop_map(TextSpec::Simple),
    ]
}

impl TextSpec {
    fn request(&self) -> Request<'_> {
        match self {
            TextSpec::Get(with_cas, touch, keys) => Request::Get(Retrieval {
                with_cas: *with_cas,
                touch: *touch,
                keys: KeyList::parse(keys).expect("valid keys"),
            }),
            TextSpec::Store(mode, key, flags, exptime, cas, value, noreply) => {
                let mode = STORE_MODES[*mode];
                Request::Store(Store {
                    mode,
                    key,
                    flags: *flags,
                    exptime: *exptime,
                    cas: if mode == StoreMode::Cas { *cas } else { 0 },
                    value,
                    noreply: *noreply,
                })
            }
            TextSpec::Delete(key, noreply) => Request::Delete {
                key,
                noreply: *noreply,
            },
            TextSpec::Arith(incr, key, delta, noreply) => Request::Arith {
                op: if *incr { ArithOp::Incr } else { ArithOp::Decr },
                key,
                delta: *delta,
                noreply: *noreply,
            },
            TextSpec::Touch(key, exptime, noreply) => Request::Touch {
                key,
                exptime: *exptime,
                noreply: *noreply,
            },
            TextSpec::Flush(delay, noreply) => Request::FlushAll {
                delay: *delay,
                noreply: *noreply,
            },
            TextSpec::Verbosity(level, noreply) => Request::Verbosity {
                level: *level,
                noreply: *noreply,
            },
            TextSpec::Stats(args) => Request::Stats { args },
            TextSpec::Simple(i) => [
                Request::Version,
                Request::Quit,
                Request::MetaNoop,
                Request::Shutdown { graceful: true },
            ][*i]
                .clone(),
        }
    }
}

/// A meta command line in canonical form (single spaces, flags as given).
fn meta_line() -> impl Strategy<Value = Vec<u8>> {
    let flag = prop_oneof![
        prop::sample::select(vec![
            "v", "c", "f", "h", "k", "l", "q", "s", "t", "u", "I", "x"
        ])
        .prop_map(|f| f.to_string()),
        any::<i32>().prop_map(|n| format!("T{n}")),
        any::<i32>().prop_map(|n| format!("N{n}")),
        any::<i32>().prop_map(|n| format!("R{n}")),
        any::<u64>().prop_map(|n| format!("C{n}")),
        any::<u64>().prop_map(|n| format!("E{n}")),
        any::<u32>().prop_map(|n| format!("F{n}")),
        "[a-zA-Z0-9]{0,32}".prop_map(|o| format!("O{o}")),
    ];
    let flags = prop::collection::vec(flag, 0..8).prop_map(|mut flags| {
        // One of each letter, as memcached requires.
        let mut seen = std::collections::HashSet::new();
        flags.retain(|f| seen.insert(f.as_bytes()[0]));
        flags
    });
    (0..4usize, key(), flags, value(), any::<bool>()).prop_map(|(cmd, key, flags, value, b64)| {
        let mut line = [&b"mg "[..], b"md ", b"ma ", b"ms "][cmd].to_vec();
        let mut flags: Vec<String> = flags.into_iter().filter(|f| !f.starts_with('b')).collect();
        if b64 {
            let mut encoded = Vec::new();
            segcore_protocol::base64::encode(&key[..key.len().min(180)], &mut encoded);
            line.extend_from_slice(&encoded);
            flags.push("b".into());
        } else {
            line.extend_from_slice(&key);
        }
        if cmd == 3 {
            line.push(b' ');
            line.extend_from_slice(value.len().to_string().as_bytes());
        }
        for f in &flags {
            line.push(b' ');
            line.extend_from_slice(f.as_bytes());
        }
        line.extend_from_slice(b"\r\n");
        if cmd == 3 {
            line.extend_from_slice(&value);
            line.extend_from_slice(b"\r\n");
        }
        line
    })
}

fn binary_request() -> impl Strategy<Value = Vec<u8>> {
    let opcodes: Vec<u8> = (0u8..=0x24)
        .filter(|&b| Opcode::from_u8(b).is_some())
        .collect();
    (
        prop::sample::select(opcodes),
        prop::collection::vec(any::<u8>(), 1..=250),
        value(),
        any::<[u64; 3]>(),
        any::<u32>(),
    )
        .prop_map(|(op, key, value, [a, b, c], opaque)| {
            let opcode = Opcode::from_u8(op).expect("known opcode");
            let x = a as u32;
            let command = match opcode {
                Opcode::Get | Opcode::GetQ | Opcode::GetK | Opcode::GetKQ => Command::Get {
                    quiet: matches!(opcode, Opcode::GetQ | Opcode::GetKQ),
                    with_key: matches!(opcode, Opcode::GetK | Opcode::GetKQ),
                },
                Opcode::Gat | Opcode::GatQ | Opcode::GatK | Opcode::GatKQ => Command::GetAndTouch {
                    exptime: x,
                    quiet: matches!(opcode, Opcode::GatQ | Opcode::GatKQ),
                    with_key: matches!(opcode, Opcode::GatK | Opcode::GatKQ),
                },
                Opcode::Touch => Command::Touch { exptime: x },
                Opcode::Set
                | Opcode::SetQ
                | Opcode::Add
                | Opcode::AddQ
                | Opcode::Replace
                | Opcode::ReplaceQ => Command::Store {
                    mode: match opcode {
                        Opcode::Set | Opcode::SetQ => binary::StoreMode::Set,
                        Opcode::Add | Opcode::AddQ => binary::StoreMode::Add,
                        _ => binary::StoreMode::Replace,
                    },
                    flags: x,
                    exptime: b as u32,
                    quiet: matches!(opcode, Opcode::SetQ | Opcode::AddQ | Opcode::ReplaceQ),
                },
                Opcode::Append | Opcode::AppendQ | Opcode::Prepend | Opcode::PrependQ => {
                    Command::Concat {
                        append: matches!(opcode, Opcode::Append | Opcode::AppendQ),
                        quiet: matches!(opcode, Opcode::AppendQ | Opcode::PrependQ),
                    }
                }
                Opcode::Delete | Opcode::DeleteQ => Command::Delete {
                    quiet: opcode == Opcode::DeleteQ,
                },
                Opcode::Increment | Opcode::IncrementQ | Opcode::Decrement | Opcode::DecrementQ => {
                    Command::Arith {
                        incr: matches!(opcode, Opcode::Increment | Opcode::IncrementQ),
                        delta: a,
                        initial: b,
                        exptime: c as u32,
                        quiet: matches!(opcode, Opcode::IncrementQ | Opcode::DecrementQ),
                    }
                }
                Opcode::Quit | Opcode::QuitQ => Command::Quit {
                    quiet: opcode == Opcode::QuitQ,
                },
                Opcode::Flush | Opcode::FlushQ => Command::Flush {
                    delay: x,
                    quiet: opcode == Opcode::FlushQ,
                },
                Opcode::NoOp => Command::NoOp,
                Opcode::Version => Command::Version,
                Opcode::Stat => Command::Stat,
                Opcode::Verbosity => Command::Verbosity { level: x },
                Opcode::SaslListMechs => Command::SaslListMechs,
                Opcode::SaslAuth => Command::SaslAuth,
                Opcode::SaslStep => Command::SaslStep,
            };
            let (needs_key, needs_value) = match command {
                Command::Store { .. }
                | Command::Concat { .. }
                | Command::SaslAuth
                | Command::SaslStep => (true, true),
                Command::Quit { .. }
                | Command::Flush { .. }
                | Command::NoOp
                | Command::Version
                | Command::Verbosity { .. }
                | Command::SaslListMechs => (false, false),
                _ => (true, false),
            };
            let request = binary::Request {
                opcode,
                command,
                opaque,
                cas: c,
                key: if needs_key { &key } else { &[] },
                value: if needs_value { &value } else { &[] },
            };
            let mut out = Vec::new();
            request.encode(&mut out);
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn text_requests_round_trip(spec in text_spec()) {
        let request = spec.request();
        let mut encoded = Vec::new();
        request.encode(&mut encoded);
        let (parsed, used) = text::parse(&encoded, &Limits::default()).unwrap().unwrap();
        prop_assert_eq!(used, encoded.len());
        prop_assert_eq!(parsed, request);
    }

    #[test]
    fn meta_requests_round_trip(line in meta_line()) {
        let (parsed, used) = text::parse(&line, &Limits::default()).unwrap().unwrap();
        prop_assert_eq!(used, line.len());
        let mut encoded = Vec::new();
        parsed.encode(&mut encoded);
        prop_assert_eq!(encoded, line);
    }

    #[test]
    fn binary_requests_round_trip(packet in binary_request()) {
        let (parsed, used) = binary::parse(&packet, &Limits::default()).unwrap().unwrap();
        prop_assert_eq!(used, packet.len());
        let mut encoded = Vec::new();
        parsed.encode(&mut encoded);
        prop_assert_eq!(encoded, packet);
    }

    #[test]
    fn every_prefix_of_a_text_pipeline_is_incomplete(
        specs in prop::collection::vec(text_spec(), 1..4),
        metas in prop::collection::vec(meta_line(), 0..3),
    ) {
        let mut pipeline = Vec::new();
        for spec in &specs {
            spec.request().encode(&mut pipeline);
        }
        for line in &metas {
            pipeline.extend_from_slice(line);
        }
        let limits = Limits::default();
        let mut at = 0;
        while at < pipeline.len() {
            let (_, used) = text::parse(&pipeline[at..], &limits).unwrap().unwrap();
            for cut in at..at + used {
                prop_assert_eq!(text::parse(&pipeline[at..cut], &limits), Ok(None));
            }
            at += used;
        }
    }

    #[test]
    fn every_prefix_of_a_binary_pipeline_is_incomplete(
        packets in prop::collection::vec(binary_request(), 1..4),
    ) {
        let pipeline = packets.concat();
        let limits = Limits::default();
        let mut at = 0;
        while at < pipeline.len() {
            let (_, used) = binary::parse(&pipeline[at..], &limits).unwrap().unwrap();
            for cut in at..at + used {
                prop_assert_eq!(binary::parse(&pipeline[at..cut], &limits), Ok(None));
            }
            at += used;
        }
    }

    #[test]
    fn arbitrary_bytes_keep_text_invariants(data in prop::collection::vec(any::<u8>(), 0..512)) {
        checks::check_text(&data);
    }

    #[test]
    fn arbitrary_bytes_keep_binary_invariants(data in prop::collection::vec(any::<u8>(), 0..512)) {
        checks::check_binary(&data);
    }

    #[test]
    fn mutated_valid_input_keeps_invariants(
        spec in text_spec(),
        packet in binary_request(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut text_bytes = Vec::new();
        spec.request().encode(&mut text_bytes);
        let mut binary_bytes = packet;
        for (at, byte) in &flips {
            let i = at.index(text_bytes.len());
            text_bytes[i] = *byte;
            let j = at.index(binary_bytes.len());
            binary_bytes[j] = *byte;
        }
        checks::check_text(&text_bytes);
        checks::check_binary(&binary_bytes);
    }
}

#[test]
fn key_list_ignores_spacing() {
    let a = text::parse(b"get a  b\r\n", &Limits::default())
        .unwrap()
        .unwrap()
        .0;
    let b = text::parse(b"get a b\r\n", &Limits::default())
        .unwrap()
        .unwrap()
        .0;
    assert_eq!(a, b);
    let Request::Get(Retrieval { keys, .. }) = a else {
        panic!()
    };
    assert_eq!(keys, KeyList::parse(b" a   b ").unwrap());
    assert_eq!(keys.len(), 2);
    assert_eq!(KeyList::parse(b"   "), None);
    // As memcached: a control byte is part of a key, only spaces split.
    assert_eq!(KeyList::parse(b"a\x01").map(|k| k.len()), Some(1));
}
