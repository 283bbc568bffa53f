//! `segcore-bench`: a load generator for any memcached-compatible server.
//!
//! Closed-loop load (each connection keeps `--pipeline` requests in flight)
//! over the text or binary protocol, with configurable key distributions,
//! get:set mix and value sizes; HDR latency histograms per operation;
//! throughput; and, given `--server-pid`, the server's CPU time per request
//! next to the load generator's own CPU use.
//!
//! Modes: `run` (one server) and `compare` (two servers, alternating A B A B
//! for several rounds, reporting each round and the median ratio B/A — the
//! only figures that hold on a noisy machine). `--verify` checks every hit
//! byte for byte. `--rate` switches to an open loop with latency counted
//! from intended send times. `hit-ratio` replays a key stream cache-aside
//! (`bounds`: what a cache of N items could reach on it);
//! `memory` reports a local server's resident bytes per item; `conns`
//! what connection churn, idle connections and half-sent values cost it. `--hgrm`
//! and `--plot` write the latency distribution for other tools and as an
//! SVG percentile curve. Protocols: text (with `--mget` multi-gets), meta,
//! binary.

mod bounds;
mod conns;
mod cpu;
mod load;
mod memory;
mod modes;
mod output;
mod runs;
mod tls;
mod verify;
mod workload;

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use load::{LoadConfig, OpStats, Proto, Results};
use workload::{KeyPattern, Ratio, ValueSize};

/// Load generator for memcached-compatible servers (segcore, memcached, ...).
#[derive(Parser, Debug)]
#[command(name = "segcore-bench", version, about)]
enum Cli {
    /// Load one server and report throughput, latency and CPU.
    Run(runs::RunArgs),
    /// The same load against two servers, alternating, with median ratios.
    Compare(runs::CompareArgs),
    /// Cache-aside replay (get; set on a miss) of a key stream: the hit
    /// ratio a server reaches at its memory limit.
    HitRatio(modes::HitRatioArgs),
    /// Best hit ratios a cache of N items could reach on that stream.
    Bounds(bounds::BoundsArgs),
    /// Load N items and report the server's resident memory per item.
    Memory(memory::MemoryArgs),
    /// What connections cost the server: churn, idle, half-sent values.
    Conns(conns::ConnsArgs),
}

/// The load shape, shared by every mode.
#[derive(clap::Args, Debug, Clone)]
struct Args {
    /// Wire protocol: text, meta (mg/ms) or binary.
    #[arg(long, default_value = "text", value_parser = ["text", "meta", "binary"])]
    protocol: String,
    /// Keys per get (text protocol multi-get).
    #[arg(long, default_value_t = 1)]
    mget: usize,
    /// Load threads.
    #[arg(short = 't', long, default_value_t = 1)]
    threads: usize,
    /// CPUs to pin load threads to, e.g. "0" or "0,2" (default: not pinned).
    #[arg(long)]
    cpus: Option<String>,
    /// Connections per thread.
    #[arg(short = 'c', long, default_value_t = 50)]
    connections: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// get:set ratio, e.g. 9:1.
    #[arg(long, default_value = "9:1")]
    ratio: String,
    /// Number of distinct keys.
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    /// Key distribution: uniform, zipf[:alpha], gaussian[:stddev], sequential.
    #[arg(long, default_value = "uniform")]
    key_pattern: String,
    /// Key prefix (keys are the prefix plus 12 digits).
    #[arg(long, default_value = "key:")]
    key_prefix: String,
    /// Value size in bytes, or a range MIN-MAX.
    #[arg(long, default_value = "64")]
    value_size: String,
    /// Seconds to measure.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring (excluded from results).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Store every key once before the run.
    #[arg(long)]
    prefill: bool,
    /// Open loop: send this many requests per second in total on a fixed
    /// schedule, and count latency from each request's intended send time
    /// (a stalled server cannot hide its stall). Default: closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Write self-checking values and check every hit byte for byte; exit
    /// with status 3 if any hit is not a value this run wrote for its key
    /// (use with --prefill, or flush first: values left by earlier runs
    /// count as mismatches).
    #[arg(long)]
    verify: bool,
    /// Speak TLS to the server(s), trusting the CA in this PEM file (the
    /// server certificate must name 127.0.0.1 or the address used). Closed
    /// loop only.
    #[arg(long, value_name = "CA_PEM")]
    tls_ca: Option<std::path::PathBuf>,
}

fn parse_cpus(text: &str) -> Result<Vec<usize>, String> {
    text.split(',')
        .map(|c| {
            c.trim()
                .parse()
                .map_err(|_| format!("bad CPU list {text:?}"))
        })
        .collect()
}

fn config(server: &str, args: &Args) -> Result<LoadConfig, String> {
    let server = resolve(server)?;
    if args.tls_ca.is_some() && args.rate.is_some() {
        return Err("--tls-ca works with the closed loop only (no --rate)".into());
    }
    Ok(LoadConfig {
        tls: args.tls_ca.as_deref().map(tls::client_config).transpose()?,
        server,
        proto: match args.protocol.as_str() {
            "binary" => Proto::Binary,
            "meta" => Proto::Meta,
            _ => Proto::Text,
        },
        mget: args.mget.max(1),
        threads: args.threads.max(1),
        cpus: args
            .cpus
            .as_deref()
            .map(parse_cpus)
            .transpose()?
            .unwrap_or_default(),
        connections: args.connections.max(1),
        pipeline: args.pipeline.max(1),
        ratio: args.ratio.parse::<Ratio>()?,
        keys: args.keys.max(1),
        pattern: args.key_pattern.parse::<KeyPattern>()?,
        prefix: args.key_prefix.clone(),
        value_size: args.value_size.parse::<ValueSize>()?,
        duration: Duration::from_secs_f64(args.duration.max(0.1)),
        warmup: Duration::from_secs_f64(args.warmup.max(0.0)),
        verify: args.verify,
        rate: args.rate.filter(|&r| r > 0.0),
        run_id: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()),
    })
    .and_then(|c: LoadConfig| {
        if c.mget > 1 && c.proto != Proto::Text {
            return Err("--mget needs --protocol text".into());
        }
        let sample_key = format!("{}{:012}", c.prefix, 0);
        if !segcore_protocol::key::is_valid_text_key(sample_key.as_bytes()) {
            return Err(format!(
                "--key-prefix {:?} makes invalid keys (no spaces or control characters, at most 238 bytes)",
                c.prefix
            ));
        }
        let needed = verify::min_value_len(c.prefix.len() + 12);
        if c.verify && c.value_size.min < needed {
            Err(format!(
                "--verify needs values of at least {needed} bytes for these keys"
            ))
        } else {
            Ok(c)
        }
    })
}

fn row(name: &str, s: &OpStats, secs: f64) {
    let q = |p: f64| s.latency.value_at_quantile(p);
    println!(
        "{name:<6} {:>12.0} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}",
        s.count as f64 / secs,
        s.hits,
        s.misses,
        s.errors,
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        q(0.9999),
        s.latency.max()
    );
}

/// One measured run, reduced to the figures compared across servers.
#[derive(Clone, Debug)]
struct Summary {
    mismatches: u64,
    ops_per_sec: f64,
    p50_us: u64,
    p99_us: u64,
    p999_us: u64,
    hits: u64,
    misses: u64,
    errors: u64,
    server_cpu_us_per_request: Option<f64>,
    client_cpu_share: f64,
}

impl Summary {
    fn json(&self) -> String {
        let cpu = self
            .server_cpu_us_per_request
            .map_or("null".to_string(), |c| format!("{c:.3}"));
        format!(
            "{{\"ops_per_sec\": {:.1}, \"p50_us\": {}, \"p99_us\": {}, \"p999_us\": {}, \"hits\": {}, \"misses\": {}, \"errors\": {}, \"server_cpu_us_per_request\": {}, \"client_cpu_share\": {:.3}}}",
            self.ops_per_sec, self.p50_us, self.p99_us, self.p999_us, self.hits, self.misses, self.errors, cpu, self.client_cpu_share
        )
    }
}

/// Runs the load once (prefill first if asked) and measures CPU around it.
fn measure(
    config: &LoadConfig,
    prefill: bool,
    pids: &[u32],
    print: bool,
) -> Result<(Summary, Results), String> {
    if prefill {
        load::prefill(config).map_err(|e| format!("prefill: {e}"))?;
    }
    let cpu_before = cpu::processes_cpu(pids);
    let own_before = cpu::own_cpu();
    // CPU is sampled around the whole run; the warm-up share is removed in
    // proportion to time, as the load is steady.
    let started = Instant::now();
    let results = load::run(config).map_err(|e| e.to_string())?;
    let wall = started.elapsed().as_secs_f64();
    let measured = config.duration.as_secs_f64();
    let server_cpu = match (cpu_before, cpu::processes_cpu(pids)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a).mul_f64(measured / wall)),
        _ => None,
    };
    let own_cpu = (cpu::own_cpu() - own_before).mul_f64(measured / wall);
    if print {
        report(&results, server_cpu, own_cpu);
        if config.verify {
            report_verify(&results);
        }
    }
    let total = results.total();
    let summary = Summary {
        mismatches: results.mismatches,
        ops_per_sec: total.count as f64 / measured,
        p50_us: total.latency.value_at_quantile(0.5),
        p99_us: total.latency.value_at_quantile(0.99),
        p999_us: total.latency.value_at_quantile(0.999),
        hits: total.hits,
        misses: total.misses,
        errors: total.errors,
        server_cpu_us_per_request: server_cpu
            .map(|c| c.as_secs_f64() * 1e6 / total.count.max(1) as f64),
        client_cpu_share: own_cpu.as_secs_f64() / measured,
    };
    Ok((summary, results))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn report(results: &Results, server_cpu: Option<Duration>, own_cpu: Duration) {
    let secs = results.elapsed.as_secs_f64();
    println!(
        "{:<6} {:>12} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}",
        "op",
        "ops/s",
        "hits",
        "misses",
        "errors",
        "p50us",
        "p90us",
        "p99us",
        "p99.9us",
        "p99.99us",
        "max_us"
    );
    row("get", &results.gets, secs);
    row("set", &results.sets, secs);
    let total = results.total();
    row("total", &total, secs);
    if let Some(cpu) = server_cpu {
        println!(
            "server cpu: {:.2} us/request ({:.0}% of a core)",
            cpu.as_secs_f64() * 1e6 / total.count.max(1) as f64,
            cpu.as_secs_f64() * 100.0 / secs
        );
    }
    println!(
        "client cpu: {:.0}% of a core (whole run); failed connections: {}",
        own_cpu.as_secs_f64() * 100.0 / secs,
        results.failed_connections
    );
}

fn report_verify(results: &Results) {
    println!(
        "verify: {} values checked, {} mismatches",
        results.verified, results.mismatches
    );
}

fn write_file(path: &std::path::Path, body: &str) -> Result<(), String> {
    std::fs::write(path, body).map_err(|e| format!("{}: {e}", path.display()))
}

/// Why a run failed.
enum Failure {
    /// Bad arguments or an I/O error.
    Error(String),
    /// `--verify` found values the server should not have returned.
    Mismatches(u64),
}

impl From<String> for Failure {
    fn from(e: String) -> Self {
        Failure::Error(e)
    }
}

fn main() -> ExitCode {
    match main_result(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Error(e)) => {
            eprintln!("segcore-bench: {e}");
            ExitCode::from(1)
        }
        Err(Failure::Mismatches(n)) => {
            eprintln!("segcore-bench: {n} values failed verification");
            ExitCode::from(3)
        }
    }
}

fn main_result(cli: Cli) -> Result<(), Failure> {
    match cli {
        Cli::Run(a) => runs::run(a)?,
        Cli::Compare(a) => runs::compare(a)?,
        Cli::HitRatio(a) => {
            let server = resolve(&a.server)?;
            let pattern = a.key_pattern.parse::<KeyPattern>()?;
            let result = modes::hit_ratio(&a, server, pattern).map_err(|e| e.to_string())?;
            println!("{}", result.describe(&a));
        }
        Cli::Bounds(a) => println!("{}", bounds::compute(&a)?),
        Cli::Memory(a) => memory::run(&a, resolve(&a.server)?).map_err(|e| e.to_string())?,
        Cli::Conns(a) => {
            let report = conns::run(resolve(&a.server)?, &a).map_err(|e| e.to_string())?;
            println!("{}", report.summary(a.scenario));
        }
    }
    Ok(())
}

fn resolve(server: &str) -> Result<SocketAddr, String> {
    server
        .to_socket_addrs()
        .map_err(|e| format!("{server}: {e}"))?
        .next()
        .ok_or_else(|| format!("{server}: no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }

    #[test]
    fn summary_json_is_well_formed() {
        let s = Summary {
            mismatches: 0,
            ops_per_sec: 1.5,
            p50_us: 2,
            p99_us: 3,
            p999_us: 4,
            hits: 5,
            misses: 6,
            errors: 0,
            server_cpu_us_per_request: None,
            client_cpu_share: 0.5,
        };
        let json = s.json();
        assert!(json.starts_with('{') && json.ends_with('}'));
        assert!(json.contains("\"server_cpu_us_per_request\": null"));
        assert!(json.contains("\"ops_per_sec\": 1.5"));
    }
}
