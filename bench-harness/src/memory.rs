//! The `memory` mode: what a server's resident memory does as it fills,
//! and what filling does to its latency.
//!
//! Items are stored through one pipelined connection (batches of
//! `--batch` sets), keys padded to `--key-size`. Reported: RSS growth per
//! item held (at the end and at each `--milestones` count), the latency of
//! each batch while the server grows (its index growing included), with
//! `--rewrite` the latency of the same sets again once nothing grows (the
//! difference is what growth adds), and with `--sample-every N` how many
//! of every Nth key a get finds (items held, as a client sees them).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use hdrhistogram::Histogram;
use segcore_protocol::response::{self as reply, Outcome};

use crate::modes::{resident_bytes, set_request, Pipe};
use crate::workload::key_name;

/// Arguments of the `memory` mode.
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
    /// Also report RSS per item when this many items have been stored
    /// (comma-separated counts).
    #[arg(long, value_delimiter = ',')]
    pub milestones: Vec<u64>,
    /// Sets per pipelined batch.
    #[arg(long, default_value_t = 100)]
    pub batch: u64,
    /// After the fill, store the same keys again (no growth) and report
    /// that latency too.
    #[arg(long)]
    pub rewrite: bool,
    /// After the fill, get every Nth key and count the hits.
    #[arg(long, default_value_t = 0)]
    pub sample_every: u64,
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

/// The key of item `i`, padded to `len` bytes.
fn item_key(i: u64, len: usize, out: &mut Vec<u8>) {
    let mut name = Vec::new();
    key_name("", i, &mut name);
    out.clear();
    out.resize(len.saturating_sub(name.len()), b'k');
    out.extend_from_slice(&name);
}

/// One pass of sets over items `0..items`, each batch's latency (from
/// its send to its last reply) in `latency`; `at_milestone(count)` runs
/// when `count` items have been stored and `count` is a milestone.
fn store_all(
    pipe: &mut Pipe,
    a: &MemoryArgs,
    latency: &mut Histogram<u64>,
    mut at_milestone: impl FnMut(u64) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let value = vec![b'm'; a.value_size];
    let (mut out, mut key) = (Vec::new(), Vec::new());
    let batch = a.batch.max(1);
    let mut i = 0;
    while i < a.items {
        out.clear();
        let mut n = (a.items - i).min(batch);
        // End batches on milestones, so each is measured exactly there.
        if let Some(&m) = a.milestones.iter().find(|&&m| m > i && m < i + n) {
            n = m - i;
        }
        for j in i..i + n {
            item_key(j, a.key_size, &mut key);
            set_request(&mut out, &key, &value);
        }
        let start = Instant::now();
        pipe.stream.write_all(&out)?;
        for _ in 0..n {
            pipe.reply(&mut reply::text_store)?;
        }
        let _ = latency.record(start.elapsed().as_micros().max(1) as u64);
        i += n;
        if a.milestones.contains(&i) {
            at_milestone(i)?;
        }
    }
    Ok(())
}

fn summary(h: &Histogram<u64>) -> String {
    format!(
        "p50 {} us, p99 {} us, p99.99 {} us, max {} us ({} batches)",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.9999),
        h.max(),
        h.len()
    )
}

/// Runs the mode and prints its report; the first line keeps the format
/// scripts read (`memory: <bytes per item> ...`).
pub fn run(a: &MemoryArgs, server: SocketAddr) -> std::io::Result<()> {
    let mut pipe = Pipe::connect(server)?;
    let held_before = curr_items(&mut pipe)?;
    let before = resident_bytes(a.server_pid)?;
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    let mut milestones = Vec::new();
    let pid = a.server_pid;
    store_all(&mut pipe, a, &mut latency, |count| {
        milestones.push((count, resident_bytes(pid)?));
        Ok(())
    })?;
    let after = resident_bytes(pid)?;
    let held = curr_items(&mut pipe)?.saturating_sub(held_before);
    let per_item = |rss: u64, items: u64| rss.saturating_sub(before) as f64 / items.max(1) as f64;
    println!(
        "memory: {:.1} resident bytes per item ({} stored, {} held; {}-byte keys, {}-byte values)",
        per_item(after, held),
        a.items,
        held,
        a.key_size,
        a.value_size
    );
    for (count, rss) in milestones {
        println!(
            "at {count} items: {:.1} resident bytes per item, RSS {:.1} MiB",
            per_item(rss, count),
            rss as f64 / (1 << 20) as f64
        );
    }
    if !a.milestones.is_empty() || a.rewrite || a.sample_every > 0 {
        println!(
            "RSS {:.1} MiB ({} bytes) after the fill",
            after as f64 / (1 << 20) as f64,
            after
        );
    }
    if !a.milestones.is_empty() || a.rewrite {
        println!("fill ({} sets a batch): {}", a.batch, summary(&latency));
    }
    if a.rewrite {
        let mut again = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
        let no_milestones = MemoryArgs {
            milestones: Vec::new(),
            server: String::new(),
            ..*a
        };
        store_all(&mut pipe, &no_milestones, &mut again, |_| Ok(()))?;
        println!("rewrite, nothing grows: {}", summary(&again));
    }
    if a.sample_every > 0 {
        let (mut asked, mut found, mut key) = (0u64, 0u64, Vec::new());
        let mut i = 0;
        while i < a.items {
            item_key(i, a.key_size, &mut key);
            let mut out = b"get ".to_vec();
            out.extend_from_slice(&key);
            out.extend_from_slice(b"\r\n");
            pipe.stream.write_all(&out)?;
            match pipe.reply(&mut |input| reply::text_get(input, &mut |_, _| {}))? {
                Outcome::Values(0) => {}
                Outcome::Values(_) => found += 1,
                _ => return Err(std::io::Error::other("error reply to get")),
            }
            asked += 1;
            i += a.sample_every;
        }
        println!(
            "retrievable: {found} of {asked} sampled keys (about {} items)",
            found * a.sample_every
        );
    }
    Ok(())
}
