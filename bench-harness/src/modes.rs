//! The two measurements that are not throughput: hit ratio under memory
//! pressure (cache-aside replay of a key stream) and resident memory per
//! item (load N items, read the server's RSS).

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

/// Resident memory per item.
#[derive(clap::Args, Debug)]
pub struct MemoryArgs {
    /// Server address.
    #[arg(short = 's', long, default_value = "127.0.0.1:11211")]
    pub server: String,
    /// Server process id (its RSS is read from /proc, so it must be local).
    #[arg(long)]
    pub server_pid: u32,
    /// Items to store.
    #[arg(long, default_value_t = 1_000_000)]
    pub items: u64,
    /// Key length in bytes.
    #[arg(long, default_value_t = 24)]
    pub key_size: usize,
    /// Value length in bytes.
    #[arg(long, default_value_t = 64)]
    pub value_size: usize,
}

/// A blocking text-protocol connection that sends a batch and reads its
/// replies in order.
struct Pipe {
    stream: TcpStream,
    input: Vec<u8>,
    buf: Vec<u8>,
}

impl Pipe {
    fn connect(server: SocketAddr) -> std::io::Result<Pipe> {
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
    fn reply(&mut self, parse: &mut dyn FnMut(&[u8]) -> reply::Parsed) -> std::io::Result<Outcome> {
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

fn set_request(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
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
}

impl HitRatio {
    /// hits / gets.
    pub fn ratio(&self) -> f64 {
        self.hits as f64 / self.gets.max(1) as f64
    }

    /// hits / gets over the key distribution's requests alone.
    pub fn stream_ratio(&self) -> f64 {
        self.stream_hits as f64 / self.stream_gets.max(1) as f64
    }
}

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
    let mut rng = Rng::new(0x4177);
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
pub fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// What loading items did to the server's memory.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemoryUse {
    /// Items loaded.
    pub items: u64,
    /// Items the server reports holding afterwards (`curr_items`).
    pub held: u64,
    /// RSS growth divided by items held.
    pub bytes_per_item: f64,
}

fn curr_items(pipe: &mut Pipe) -> std::io::Result<u64> {
    pipe.stream.write_all(b"stats\r\n")?;
    let mut items = 0;
    loop {
        let line_end = loop {
            if let Some(i) = memchr::memchr(b'\n', &pipe.input) {
                break i;
            }
            let n = pipe.stream.read(&mut pipe.buf)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let chunk = pipe.buf[..n].to_vec();
            pipe.input.extend_from_slice(&chunk);
        };
        let line: Vec<u8> = pipe.input.drain(..=line_end).collect();
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end();
        if line == "END" {
            return Ok(items);
        }
        if let Some(v) = line.strip_prefix("STAT curr_items ") {
            items = v.parse().unwrap_or(0);
        }
    }
}

/// Stores `items` items with keys padded to `key_len` bytes and values of
/// `value_len` bytes, and reports the server's RSS growth per item held.
pub fn memory_per_item(
    server: SocketAddr,
    pid: u32,
    items: u64,
    key_len: usize,
    value_len: usize,
) -> std::io::Result<MemoryUse> {
    let mut pipe = Pipe::connect(server)?;
    let held_before = curr_items(&mut pipe)?;
    let before =
        resident_bytes(pid).ok_or_else(|| std::io::Error::other("cannot read the server's RSS"))?;
    let value = vec![b'm'; value_len];
    let mut out = Vec::new();
    let mut key = Vec::new();
    let mut i = 0;
    while i < items {
        out.clear();
        let n = (items - i).min(100);
        for j in i..i + n {
            key_name("", j, &mut key);
            let mut padded = vec![b'k'; key_len.saturating_sub(key.len())];
            padded.extend_from_slice(&key);
            set_request(&mut out, &padded, &value);
        }
        pipe.stream.write_all(&out)?;
        for _ in 0..n {
            pipe.reply(&mut reply::text_store)?;
        }
        i += n;
    }
    let after =
        resident_bytes(pid).ok_or_else(|| std::io::Error::other("cannot read the server's RSS"))?;
    let held = curr_items(&mut pipe)?.saturating_sub(held_before);
    Ok(MemoryUse {
        items,
        held,
        bytes_per_item: after.saturating_sub(before) as f64 / held.max(1) as f64,
    })
}
