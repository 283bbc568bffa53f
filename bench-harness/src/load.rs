//! The closed-loop load: threads pinned to chosen CPUs, each driving its
//! connections in lock step — write `pipeline` requests to every
//! connection, then read every reply — and recording each request's latency
//! from the moment its batch was written.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use crate::tls::Stream;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use segcore_protocol::binary::{Command, Opcode, Request, StoreMode};
use segcore_protocol::text::{self, KeyList, Retrieval, Store, StoreMode as TextMode};

use crate::verify;
use crate::workload::{key_name, KeyChooser, KeyPattern, Ratio, Rng, ValueSize};
use segcore_protocol::response::{self as reply, Outcome};

/// Receives each value a reply carries, with its key when the reply names it.
type ValueSink<'a> = dyn FnMut(Option<&[u8]>, &[u8]) + 'a;

mod open_loop;
mod prefill;
#[cfg(test)]
use open_loop::intended;
use open_loop::open_loop_worker;
pub use prefill::prefill;

/// Which wire protocol the load speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// `get` / `set`.
    Text,
    /// Get / Set packets.
    Binary,
    /// `mg <key> v` / `ms <key> <len>`.
    Meta,
}

/// Everything that shapes one run.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The server.
    pub server: SocketAddr,
    /// Wire protocol.
    pub proto: Proto,
    /// Load threads, pinned to `cpus` in turn (empty: not pinned).
    pub threads: usize,
    /// CPUs for the load threads.
    pub cpus: Vec<usize>,
    /// Connections per thread.
    pub connections: usize,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// get:set mix.
    pub ratio: Ratio,
    /// Key space size.
    pub keys: u64,
    /// Key distribution.
    pub pattern: KeyPattern,
    /// Key prefix (keys are prefix + 12 digits).
    pub prefix: String,
    /// Value sizes for sets.
    pub value_size: ValueSize,
    /// Measured time.
    pub duration: Duration,
    /// Time before measuring starts (not counted).
    pub warmup: Duration,
    /// Write self-checking values and check every hit (`--verify`).
    pub verify: bool,
    /// This run's id, carried in verified values.
    pub run_id: u64,
    /// Open loop: total requests per second on a fixed schedule, latency
    /// from each request's intended send time. `None`: closed loop.
    pub rate: Option<f64>,
    /// Keys per get (text protocol multi-get); 1 otherwise.
    pub mget: usize,
    /// Speak TLS, trusting this client configuration's CA (`--tls-ca`).
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

/// Counters and latencies for one operation type.
#[derive(Clone, Debug)]
pub struct OpStats {
    /// Requests completed in the measured window.
    pub count: u64,
    /// Gets that returned a value.
    pub hits: u64,
    /// Gets that returned none.
    pub misses: u64,
    /// Error replies.
    pub errors: u64,
    /// Latency in microseconds.
    pub latency: Histogram<u64>,
}

impl OpStats {
    fn new() -> OpStats {
        OpStats {
            count: 0,
            hits: 0,
            misses: 0,
            errors: 0,
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
        }
    }

    fn merge(&mut self, other: &OpStats) {
        self.count += other.count;
        self.hits += other.hits;
        self.misses += other.misses;
        self.errors += other.errors;
        let _ = self.latency.add(&other.latency);
    }
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct Results {
    /// Gets.
    pub gets: OpStats,
    /// Sets.
    pub sets: OpStats,
    /// Length of the measured window.
    pub elapsed: Duration,
    /// Connections that failed mid-run.
    pub failed_connections: u64,
    /// Hits checked by `--verify`.
    pub verified: u64,
    /// Hits whose value was not one this run wrote for that key.
    pub mismatches: u64,
}

impl Results {
    /// These results and `other`'s together (rounds of a comparison).
    pub fn merged(mut self, other: &Results) -> Results {
        self.gets.merge(&other.gets);
        self.sets.merge(&other.sets);
        self.elapsed += other.elapsed;
        self.failed_connections += other.failed_connections;
        self.verified += other.verified;
        self.mismatches += other.mismatches;
        self
    }

    /// Both operation types together.
    pub fn total(&self) -> OpStats {
        let mut all = OpStats::new();
        all.merge(&self.gets);
        all.merge(&self.sets);
        all
    }
}

struct Conn {
    stream: Stream,
    out: Vec<u8>,
    input: Vec<u8>,
    /// (is_get, key index, intended send time) per request in flight.
    pending: std::collections::VecDeque<(bool, u64, Instant)>,
    /// Bytes of `out` already written (open loop writes without blocking).
    written: usize,
}

/// Writes one request into `out`.
pub(crate) fn encode(proto: Proto, is_get: bool, key: &[u8], value: &[u8], out: &mut Vec<u8>) {
    match (proto, is_get) {
        (Proto::Text, true) => match KeyList::parse(key) {
            Some(keys) => text::Request::Get(Retrieval {
                with_cas: false,
                touch: None,
                keys,
            })
            .encode(out),
            // Keys are the prefix (checked when the config is built) plus digits.
            None => unreachable!("--key-prefix was validated"),
        },
        (Proto::Text, false) => text::Request::Store(Store {
            mode: TextMode::Set,
            key,
            flags: 0,
            exptime: 0,
            cas: 0,
            value,
            noreply: false,
        })
        .encode(out),
        (Proto::Meta, true) => {
            out.extend_from_slice(b"mg ");
            out.extend_from_slice(key);
            out.extend_from_slice(b" v\r\n");
        }
        (Proto::Meta, false) => {
            out.extend_from_slice(b"ms ");
            out.extend_from_slice(key);
            out.push(b' ');
            segcore_protocol::number::write_u64(out, value.len() as u64);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        (Proto::Binary, get) => {
            let (opcode, command) = if get {
                (
                    Opcode::Get,
                    Command::Get {
                        quiet: false,
                        with_key: false,
                    },
                )
            } else {
                (
                    Opcode::Set,
                    Command::Store {
                        mode: StoreMode::Set,
                        flags: 0,
                        exptime: 0,
                        quiet: false,
                    },
                )
            };
            Request {
                opcode,
                command,
                opaque: 0,
                cas: 0,
                key,
                value: if get { &[] } else { value },
            }
            .encode(out);
        }
    }
}

/// Parses one reply from the front of `input`, handing each value to
/// `on_value`.
fn parse(
    proto: Proto,
    is_get: bool,
    input: &[u8],
    on_value: &mut ValueSink<'_>,
) -> Result<Option<(Outcome, usize)>, reply::BadReply> {
    match (proto, is_get) {
        (Proto::Text, true) => reply::text_get(input, &mut |k, v| on_value(Some(k), v)),
        (Proto::Text, false) => reply::text_store(input),
        (Proto::Meta, _) => reply::meta(input, &mut |v| on_value(None, v)),
        (Proto::Binary, _) => {
            Ok(reply::binary(input, &mut |_, v| on_value(None, v))?.map(|(o, _, used)| (o, used)))
        }
    }
}

/// Writes a request; a text get with `config.mget > 1` asks for that many
/// keys (the first is `key`, the rest drawn from the same distribution).
#[allow(clippy::too_many_arguments)]
fn encode_request(
    config: &LoadConfig,
    is_get: bool,
    key: &[u8],
    value: &[u8],
    chooser: &mut KeyChooser,
    rng: &mut Rng,
    scratch_key: &mut Vec<u8>,
    out: &mut Vec<u8>,
) {
    if !(is_get && config.mget > 1 && config.proto == Proto::Text) {
        return encode(config.proto, is_get, key, value, out);
    }
    out.extend_from_slice(b"get ");
    out.extend_from_slice(key);
    for _ in 1..config.mget {
        key_name(&config.prefix, chooser.next(rng), scratch_key);
        out.push(b' ');
        out.extend_from_slice(scratch_key);
    }
    out.extend_from_slice(b"\r\n");
}

/// Records one reply's outcome in `stats`.
fn account(stats: &mut OpStats, outcome: Outcome, keys_asked: usize) {
    stats.count += 1;
    match outcome {
        Outcome::Values(n) => {
            stats.hits += n as u64;
            stats.misses += keys_asked.saturating_sub(n) as u64;
        }
        Outcome::Error => stats.errors += 1,
        Outcome::Stored | Outcome::NotStored => {}
    }
}

/// The value to store for `key`: plain filler, or (verifying) a
/// self-checking value for a fresh version.
fn value_for<'v>(
    config: &LoadConfig,
    key: &[u8],
    len: usize,
    version: u64,
    filler: &'v [u8],
    scratch: &'v mut Vec<u8>,
) -> &'v [u8] {
    if config.verify {
        verify::write_value(scratch, config.run_id, version, key, len);
        scratch
    } else {
        &filler[..len]
    }
}

/// A thread's request stream: operation, key, value, all drawn from the
/// configured distributions.
struct Requests {
    chooser: KeyChooser,
    rng: Rng,
    filler: Vec<u8>,
    value: Vec<u8>,
    key: Vec<u8>,
    extra_key: Vec<u8>,
    version: u64,
}

impl Requests {
    fn new(config: &LoadConfig, chooser: KeyChooser, seed: u64, thread: usize) -> Requests {
        Requests {
            chooser,
            rng: Rng::new(seed ^ thread as u64),
            filler: vec![b'x'; config.value_size.max],
            value: Vec::new(),
            key: Vec::with_capacity(64),
            extra_key: Vec::with_capacity(64),
            version: (thread as u64) << 40,
        }
    }

    /// Writes the next request to `conn` and records it as in flight since
    /// `at` (its send time, or its intended time in an open loop).
    fn queue(&mut self, config: &LoadConfig, conn: &mut Conn, at: Instant) {
        let is_get = config.ratio.next_is_get(&mut self.rng);
        let index = self.chooser.next(&mut self.rng);
        key_name(&config.prefix, index, &mut self.key);
        let len = config.value_size.next(&mut self.rng);
        self.version += 1;
        let value = value_for(
            config,
            &self.key,
            len,
            self.version,
            &self.filler,
            &mut self.value,
        );
        encode_request(
            config,
            is_get,
            &self.key,
            value,
            &mut self.chooser,
            &mut self.rng,
            &mut self.extra_key,
            &mut conn.out,
        );
        conn.pending.push_back((is_get, index, at));
    }
}

/// What a thread has counted so far.
struct Tally {
    gets: OpStats,
    sets: OpStats,
    verified: u64,
    mismatches: u64,
    /// Scratch for regenerating verified values.
    scratch: Vec<u8>,
    /// Scratch for key names.
    key: Vec<u8>,
}

impl Tally {
    fn into_part(self, failed: u64) -> Part {
        Part {
            gets: self.gets,
            sets: self.sets,
            failed,
            verified: self.verified,
            mismatches: self.mismatches,
        }
    }

    fn new() -> Tally {
        Tally {
            gets: OpStats::new(),
            sets: OpStats::new(),
            verified: 0,
            mismatches: 0,
            scratch: Vec::new(),
            key: Vec::with_capacity(64),
        }
    }
}

/// Why [`take_replies`] stopped.
enum Drained {
    /// Every request in flight was answered.
    All,
    /// The next reply is not complete yet.
    NeedMore,
    /// The reply was not memcached's: drop the connection.
    Broken,
}

/// Takes every complete reply off `conn.input`, in request order, counting
/// each (latency from the time its request was due or sent, only for
/// requests due after `measure_from`) and verifying values when asked.
fn take_replies(
    config: &LoadConfig,
    conn: &mut Conn,
    measure_from: Instant,
    tally: &mut Tally,
) -> Drained {
    while let Some(&(is_get, index, due)) = conn.pending.front() {
        key_name(&config.prefix, index, &mut tally.key);
        let (key, scratch) = (&tally.key, &mut tally.scratch);
        let (verified, mismatches) = (&mut tally.verified, &mut tally.mismatches);
        let mut on_value = |reply_key: Option<&[u8]>, value: &[u8]| {
            if config.verify {
                *verified += 1;
                if !verify::check(value, config.run_id, reply_key.unwrap_or(key), scratch) {
                    *mismatches += 1;
                }
            }
        };
        match parse(config.proto, is_get, &conn.input, &mut on_value) {
            Ok(Some((outcome, used))) => {
                conn.input.drain(..used);
                conn.pending.pop_front();
                if due < measure_from {
                    continue;
                }
                let stats = if is_get {
                    &mut tally.gets
                } else {
                    &mut tally.sets
                };
                account(stats, outcome, if is_get { config.mget } else { 1 });
                let micros = due.elapsed().as_micros().max(1) as u64;
                let _ = stats.latency.record(micros);
            }
            Ok(None) => return Drained::NeedMore,
            Err(_) => return Drained::Broken,
        }
    }
    Drained::All
}

fn pin(cpus: &[usize], thread: usize) {
    if let Some(&cpu) = cpus.get(thread % cpus.len().max(1)) {
        core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
    }
}

fn connect(config: &LoadConfig) -> std::io::Result<Stream> {
    let stream = TcpStream::connect(config.server)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    crate::tls::wrap(config.server, stream, config.tls.as_ref())
}

/// Runs the load and returns what it measured.
pub fn run(config: &LoadConfig) -> std::io::Result<Results> {
    let chooser = KeyChooser::new(config.keys, config.pattern.clone());
    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + config.warmup;
    let end = measure_from + config.duration;
    let handles: Vec<_> = (0..config.threads)
        .map(|t| {
            let config = config.clone();
            let chooser = chooser.clone();
            std::thread::spawn(move || match config.rate {
                Some(rate) => open_loop_worker(&config, chooser, t, rate, measure_from, end),
                None => worker(&config, chooser, t, measure_from, end),
            })
        })
        .collect();
    let mut results = Results {
        gets: OpStats::new(),
        sets: OpStats::new(),
        elapsed: config.duration,
        failed_connections: 0,
        verified: 0,
        mismatches: 0,
    };
    for handle in handles {
        let part = handle.join().expect("load thread")?;
        results.gets.merge(&part.gets);
        results.sets.merge(&part.sets);
        results.failed_connections += part.failed;
        results.verified += part.verified;
        results.mismatches += part.mismatches;
    }
    Ok(results)
}

/// One load thread's share of the results.
struct Part {
    gets: OpStats,
    sets: OpStats,
    failed: u64,
    verified: u64,
    mismatches: u64,
}

fn worker(
    config: &LoadConfig,
    chooser: KeyChooser,
    thread: usize,
    measure_from: Instant,
    end: Instant,
) -> std::io::Result<Part> {
    pin(&config.cpus, thread);
    let mut requests = Requests::new(config, chooser, 0x5eed, thread);
    let mut conns: Vec<Conn> = (0..config.connections)
        .map(|_| {
            Ok(Conn {
                stream: connect(config)?,
                out: Vec::with_capacity(4096),
                input: Vec::with_capacity(65536),
                pending: std::collections::VecDeque::with_capacity(config.pipeline),
                written: 0,
            })
        })
        .collect::<std::io::Result<_>>()?;
    let mut tally = Tally::new();
    let mut failed = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    while Instant::now() < end && !conns.is_empty() {
        let sent = Instant::now();
        for conn in &mut conns {
            conn.out.clear();
            for _ in 0..config.pipeline {
                requests.queue(config, conn, sent);
            }
        }
        let mut broken = Vec::new();
        for (i, conn) in conns.iter_mut().enumerate() {
            if conn.stream.write_all(&conn.out).is_err() {
                broken.push(i);
            }
        }
        for (i, conn) in conns.iter_mut().enumerate() {
            if broken.contains(&i) {
                continue;
            }
            loop {
                match take_replies(config, conn, measure_from, &mut tally) {
                    Drained::All => break,
                    Drained::NeedMore => match conn.stream.read(&mut buf) {
                        Ok(0) | Err(_) => {
                            broken.push(i);
                            break;
                        }
                        Ok(n) => conn.input.extend_from_slice(&buf[..n]),
                    },
                    Drained::Broken => {
                        broken.push(i);
                        break;
                    }
                }
            }
        }
        broken.sort_unstable();
        broken.dedup();
        for i in broken.into_iter().rev() {
            conns.remove(i);
            failed += 1;
        }
    }
    Ok(tally.into_part(failed))
}

#[cfg(test)]
mod tests;
