//! Hit ratio under memory pressure (cache-aside replay of a key stream),
//! and the blocking pipelined connection it and [`crate::memory`] use.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::load::{self, Proto};
use crate::workload::{key_name, KeyChooser, KeyPattern, Rng};
use segcore_protocol::response::{self as reply, Outcome};

/// Arguments of the `hit-ratio` mode.
#[derive(clap::Args, Debug)]
pub struct HitRatioArgs {
    /// Server address.
    #[arg(short = 's', long, default_value = "127.0.0.1:11211")]
    pub server: String,
    /// Distinct keys in the stream.
    #[arg(long, default_value_t = 2_000_000)]
    pub keys: u64,
    /// Gets to replay.
    #[arg(long, default_value_t = 20_000_000)]
    pub requests: u64,
    /// Key distribution.
    #[arg(long, default_value = "zipf:0.99")]
    pub key_pattern: String,
    /// Value size for the sets that fill misses.
    #[arg(long, default_value_t = 64)]
    pub value_size: usize,
    /// Gets per pipelined batch. Repeats of a key inside one batch all miss
    /// before its set, as concurrent clients would; 1 replays strictly.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Gets replayed first and not counted: with it, the figure is the
    /// steady state, without the cold start's unavoidable first misses.
    #[arg(long, default_value_t = 0)]
    pub warmup: u64,
    /// Share of requests (0..1) that are one-off keys of a sequential scan
    /// (never asked for again), mixed into the stream: scan pollution.
    #[arg(long, default_value_t = 0.0)]
    pub scan_share: f64,
}

/// A blocking text-protocol connection that sends a batch and reads its
/// replies in order.
pub(crate) struct Pipe {
    /// The connection.
    pub(crate) stream: TcpStream,
    pub(crate) input: Vec<u8>,
    pub(crate) buf: Vec<u8>,
}

impl Pipe {
    pub(crate) fn connect(server: SocketAddr) -> std::io::Result<Pipe> {
        let stream = TcpStream::connect(server)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Pipe {
            stream,
            input: Vec::new(),
            buf: vec![0; 1 << 16],
        })
    }

    /// Reads one reply with `parse`.
    pub(crate) fn reply(
        &mut self,
        parse: &mut dyn FnMut(&[u8]) -> reply::Parsed,
    ) -> std::io::Result<Outcome> {
        loop {
            match parse(&self.input) {
                Ok(Some((outcome, used))) => {
                    self.input.drain(..used);
                    return Ok(outcome);
                }
                Ok(None) => {
                    let n = self.stream.read(&mut self.buf)?;
                    if n == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                    self.input.extend_from_slice(&self.buf[..n]);
                }
                Err(e) => return Err(std::io::Error::other(e.0)),
            }
        }
    }
}

pub(crate) fn set_request(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    load::encode(Proto::Text, false, key, value, out);
}

/// What a hit-ratio replay measured.
pub struct HitRatio {
    /// Gets counted (after the warm-up).
    pub gets: u64,
    /// Of those, gets that hit.
    pub hits: u64,
    /// Counted gets of the key distribution (not of the scan).
    pub stream_gets: u64,
    /// Of those, gets that hit.
    pub stream_hits: u64,
    /// Gets of the warm-up, and their hits: the cold-start figure.
    pub warmup_gets: u64,
    /// Of those, gets that hit.
    pub warmup_hits: u64,
}

impl HitRatio {
    /// hits / gets.
    pub fn ratio(&self) -> f64 {
        self.hits as f64 / self.gets.max(1) as f64
    }

    /// hits / gets over the warm-up (from an empty cache).
    pub fn warmup_ratio(&self) -> f64 {
        self.warmup_hits as f64 / self.warmup_gets.max(1) as f64
    }

    /// hits / gets over the key distribution's requests alone.
    pub fn stream_ratio(&self) -> f64 {
        self.stream_hits as f64 / self.stream_gets.max(1) as f64
    }

    /// The one line `hit-ratio` prints: the ratio, and beside it the
    /// scan-free and cold-start figures when the replay had them.
    pub fn describe(&self, args: &HitRatioArgs) -> String {
        let scan = if args.scan_share > 0.0 {
            format!(
                "; {:.0}% one-off scan keys, {:.4} on the rest",
                args.scan_share * 100.0,
                self.stream_ratio()
            )
        } else {
            String::new()
        };
        let warmup = if args.warmup > 0 {
            format!(
                " after {} warm-up gets (cold start {:.4})",
                args.warmup,
                self.warmup_ratio()
            )
        } else {
            String::new()
        };
        format!(
            "hit ratio: {:.4} ({} hits of {} gets{warmup}; {} keys, {}{scan})",
            self.ratio(),
            self.hits,
            self.gets,
            args.keys,
            args.key_pattern
        )
    }
}

/// The seed of the replayed stream (`bounds` draws the same one).
pub const HIT_RATIO_SEED: u64 = 0x4177;

/// A request's key: the distribution's rank, or the scan's next key.
#[derive(Clone, Copy)]
enum Drawn {
    Stream(u64),
    Scan(u64),
}

impl Drawn {
    fn name(self, out: &mut Vec<u8>) {
        match self {
            Drawn::Stream(k) => key_name("hr:", k, out),
            Drawn::Scan(k) => key_name("scan:", k, out),
        }
    }
}

/// Cache-aside replay: `warmup + requests` gets drawn from `pattern` over
/// `args.keys` keys (a `scan_share` of them one-off scan keys instead), in
/// batches; every miss is followed by a set of that key, as an application
/// filling its cache would do. Only the last `requests` gets count.
pub fn hit_ratio(
    args: &HitRatioArgs,
    server: SocketAddr,
    pattern: KeyPattern,
) -> std::io::Result<HitRatio> {
    let mut pipe = Pipe::connect(server)?;
    let mut chooser = KeyChooser::new(args.keys, pattern);
    let mut rng = Rng::new(HIT_RATIO_SEED);
    let value = vec![b'v'; args.value_size];
    let batch = args.batch.max(1);
    let total = args.warmup + args.requests;
    // The scan share as a threshold on a uniform u64.
    let scan_below = (args.scan_share.clamp(0.0, 1.0) * u64::MAX as f64) as u64;
    let mut result = HitRatio {
        gets: 0,
        hits: 0,
        stream_gets: 0,
        stream_hits: 0,
        warmup_gets: 0,
        warmup_hits: 0,
    };
    let (mut sent, mut scanned) = (0u64, 0u64);
    let mut out = Vec::new();
    let mut batch_keys: Vec<Drawn> = Vec::with_capacity(batch);
    let mut key = Vec::new();
    while sent < total {
        out.clear();
        batch_keys.clear();
        while batch_keys.len() < batch && sent + (batch_keys.len() as u64) < total {
            let drawn = if scan_below > 0 && rng.next_u64() < scan_below {
                scanned += 1;
                Drawn::Scan(scanned)
            } else {
                Drawn::Stream(chooser.next(&mut rng))
            };
            drawn.name(&mut key);
            out.extend_from_slice(b"get ");
            out.extend_from_slice(&key);
            out.extend_from_slice(b"\r\n");
            batch_keys.push(drawn);
        }
        pipe.stream.write_all(&out)?;
        let mut misses = Vec::new();
        for (i, &drawn) in batch_keys.iter().enumerate() {
            let hit = match pipe.reply(&mut |input| reply::text_get(input, &mut |_, _| {}))? {
                Outcome::Values(0) => {
                    misses.push(drawn);
                    false
                }
                Outcome::Values(_) => true,
                _ => return Err(std::io::Error::other("error reply to get")),
            };
            if sent + i as u64 >= args.warmup {
                result.gets += 1;
                result.hits += u64::from(hit);
                if let Drawn::Stream(_) = drawn {
                    result.stream_gets += 1;
                    result.stream_hits += u64::from(hit);
                }
            } else {
                result.warmup_gets += 1;
                result.warmup_hits += u64::from(hit);
            }
        }
        sent += batch_keys.len() as u64;
        if !misses.is_empty() {
            out.clear();
            for &drawn in &misses {
                drawn.name(&mut key);
                set_request(&mut out, &key, &value);
            }
            pipe.stream.write_all(&out)?;
            for _ in &misses {
                pipe.reply(&mut reply::text_store)?;
            }
        }
    }
    Ok(result)
}

/// Resident memory of process `pid` in bytes (VmRSS).
pub fn resident_bytes(pid: u32) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| std::io::Error::other(format!("no RSS for pid {pid}")))
}
