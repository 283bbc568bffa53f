//! `segcore-bench`: a load generator for any memcached-compatible server.
//!
//! Closed-loop load (each connection keeps `--pipeline` requests in flight)
//! over the text or binary protocol, with configurable key distributions,
//! get:set mix and value sizes; HDR latency histograms per operation;
//! throughput; and, given `--server-pid`, the server's CPU time per request
//! next to the load generator's own CPU use.
//!
//! Built so far: the `run` mode above. Still to come (see the issue): open
//! loop (`--rate`), `--verify`, A/B `compare`, hit-ratio and memory modes,
//! JSON/hgrm/SVG output.

mod cpu;
mod load;
mod reply;
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
struct Args {
    /// Server address.
    #[arg(short = 's', long, default_value = "127.0.0.1:11211")]
    server: String,
    /// Wire protocol: text or binary.
    #[arg(long, default_value = "text", value_parser = ["text", "binary"])]
    protocol: String,
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
    /// Server process id: report its CPU time per request.
    #[arg(long)]
    server_pid: Option<u32>,
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

fn config(args: &Args) -> Result<LoadConfig, String> {
    let server: SocketAddr = args
        .server
        .to_socket_addrs()
        .map_err(|e| format!("{}: {e}", args.server))?
        .next()
        .ok_or_else(|| format!("{}: no address", args.server))?;
    Ok(LoadConfig {
        server,
        proto: if args.protocol == "binary" {
            Proto::Binary
        } else {
            Proto::Text
        },
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

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("segcore-bench: {e}");
            return ExitCode::from(64);
        }
    };
    if args.prefill {
        if let Err(e) = load::prefill(&config) {
            eprintln!("segcore-bench: prefill: {e}");
            return ExitCode::from(1);
        }
    }
    let cpu_before = args.server_pid.and_then(cpu::process_cpu);
    let own_before = cpu::own_cpu();
    // The server's CPU is sampled around the whole run; the warm-up share
    // is removed in proportion to time, as the load is steady.
    let started = Instant::now();
    let results = match load::run(&config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("segcore-bench: {e}");
            return ExitCode::from(1);
        }
    };
    let wall = started.elapsed().as_secs_f64();
    let measured = config.duration.as_secs_f64();
    let server_cpu = match (cpu_before, args.server_pid.and_then(cpu::process_cpu)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a).mul_f64(measured / wall)),
        _ => None,
    };
    let own_cpu = (cpu::own_cpu() - own_before).mul_f64(measured / wall);
    report(&results, server_cpu, own_cpu);
    ExitCode::SUCCESS
}
