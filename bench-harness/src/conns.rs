//! What connections cost a server, as its users meet it: short-lived
//! connections (connect, one `get`, close — PHP and job runners), many idle
//! ones, and clients that declare large values and send most of them
//! slowly. Each scenario reports the server's resident-memory growth (read
//! from /proc, so the server must be local); churn also reports the latency
//! from `connect` to the first reply.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::modes::resident_bytes;

/// Which connection pattern to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Sequential connect / `get` / close.
    Churn,
    /// Connections that each send one `get`, then stay open and quiet.
    Idle,
    /// Connections that each send `set <key> 0 0 <size>` and 90% of the
    /// value, then wait.
    HalfSent,
}

/// Arguments of the `conns` mode.
#[derive(clap::Args, Debug)]
pub struct ConnsArgs {
    /// Server address.
    #[arg(short = 's', long, default_value = "127.0.0.1:11211")]
    pub server: String,
    /// Server process id (its RSS is read from /proc).
    #[arg(long)]
    pub server_pid: u32,
    /// The pattern.
    #[arg(long, value_enum)]
    pub scenario: Scenario,
    /// Connections (churn: connect/get/close cycles).
    #[arg(long, default_value_t = 100_000)]
    pub count: usize,
    /// Declared value size for `half-sent`.
    #[arg(long, default_value_t = 1_000_000)]
    pub value_size: usize,
}

/// What a scenario measured.
#[derive(Clone, Debug)]
pub struct ConnsReport {
    /// Connections made.
    pub connections: usize,
    /// Server RSS before and after (bytes); for idle and half-sent, after
    /// is with every connection still open.
    pub rss_before: u64,
    /// See `rss_before`.
    pub rss_after: u64,
    /// Churn only: connect to first reply, microseconds.
    pub connect_to_reply: Option<Histogram<u64>>,
}

impl ConnsReport {
    /// One line for people, as the other modes print.
    pub fn summary(&self, scenario: Scenario) -> String {
        let growth = self.rss_after as f64 - self.rss_before as f64;
        let mut line = format!(
            "conns {scenario:?}: {} connections, RSS {:.2} MB -> {:.2} MB, growth {:+.2} MB ({:.0} B per connection)",
            self.connections,
            self.rss_before as f64 / 1e6,
            self.rss_after as f64 / 1e6,
            growth / 1e6,
            growth / self.connections.max(1) as f64,
        );
        if let Some(h) = &self.connect_to_reply {
            line.push_str(&format!(
                "; connect-to-reply p50 {} us, p99 {} us, p99.9 {} us, max {} us",
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.max()
            ));
        }
        line
    }
}

/// Reads until `buf` ends with `end`.
fn read_until(stream: &mut TcpStream, end: &[u8]) -> std::io::Result<()> {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !got.ends_with(end) {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(())
}

fn connect_and_get(server: SocketAddr) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(server)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"get segcore-bench-conns\r\n")?;
    read_until(&mut stream, b"END\r\n")?;
    Ok(stream)
}

/// Lets the server notice closes before RSS is read.
fn settle() {
    std::thread::sleep(Duration::from_millis(500));
}

/// Runs `args.scenario` against the server.
pub fn run(server: SocketAddr, args: &ConnsArgs) -> std::io::Result<ConnsReport> {
    match args.scenario {
        Scenario::Churn => churn(server, args.server_pid, args.count),
        Scenario::Idle => idle(server, args.server_pid, args.count),
        Scenario::HalfSent => half_sent(server, args.server_pid, args.count, args.value_size),
    }
}

fn churn(server: SocketAddr, pid: u32, count: usize) -> std::io::Result<ConnsReport> {
    // Warm up: first-use allocations are not growth.
    for _ in 0..1000 {
        connect_and_get(server)?;
    }
    settle();
    let rss_before = resident_bytes(pid)?;
    let mut latency = Histogram::<u64>::new(3).map_err(std::io::Error::other)?;
    for _ in 0..count {
        let start = Instant::now();
        let stream = connect_and_get(server)?;
        let _ = latency.record(start.elapsed().as_micros() as u64);
        drop(stream);
    }
    settle();
    Ok(ConnsReport {
        connections: count,
        rss_before,
        rss_after: resident_bytes(pid)?,
        connect_to_reply: Some(latency),
    })
}

/// RSS growth while `count` connections made by `open` are held open.
fn held(
    server: SocketAddr,
    pid: u32,
    count: usize,
    mut open: impl FnMut(usize) -> std::io::Result<TcpStream>,
) -> std::io::Result<ConnsReport> {
    connect_and_get(server)?;
    settle();
    let rss_before = resident_bytes(pid)?;
    let mut streams = Vec::with_capacity(count);
    for i in 0..count {
        streams.push(open(i)?);
    }
    settle();
    let rss_after = resident_bytes(pid)?;
    drop(streams);
    Ok(ConnsReport {
        connections: count,
        rss_before,
        rss_after,
        connect_to_reply: None,
    })
}

fn idle(server: SocketAddr, pid: u32, count: usize) -> std::io::Result<ConnsReport> {
    held(server, pid, count, |_| connect_and_get(server))
}

fn half_sent(
    server: SocketAddr,
    pid: u32,
    count: usize,
    value_size: usize,
) -> std::io::Result<ConnsReport> {
    let part = vec![b'h'; value_size / 10 * 9];
    held(server, pid, count, |i| {
        let mut stream = TcpStream::connect(server)?;
        stream.write_all(format!("set half-sent-{i} 0 0 {value_size}\r\n").as_bytes())?;
        // A server that refuses the value swallows it; one that cannot
        // keep up stops reading, so do not wait forever on it.
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        let _ = stream.write_all(&part);
        Ok(stream)
    })
}
