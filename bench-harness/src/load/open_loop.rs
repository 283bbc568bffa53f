//! The open-loop worker (`--rate`): requests leave on a fixed schedule,
//! and latency counts from each request's intended send time.

use super::*;

/// When request `i` of a thread running at `rate` per second is due.
pub fn intended(start: Instant, rate: f64, i: u64) -> Instant {
    start + Duration::from_secs_f64(i as f64 / rate)
}

/// Open loop: requests leave on a fixed schedule whatever the replies do,
/// spread over the thread's connections, and each latency counts from the
/// request's intended send time, so a server that stalls is charged for
/// every request that queued behind the stall (no coordinated omission).
pub(super) fn open_loop_worker(
    config: &LoadConfig,
    chooser: KeyChooser,
    thread: usize,
    total_rate: f64,
    measure_from: Instant,
    end: Instant,
) -> std::io::Result<Part> {
    pin(&config.cpus, thread);
    let rate = (total_rate / config.threads as f64).max(0.001);
    let mut requests = Requests::new(config, chooser, 0x0e11, thread);
    let mut conns: Vec<Conn> = (0..config.connections)
        .map(|_| nonblocking_conn(config))
        .collect::<std::io::Result<_>>()?;
    let mut tally = Tally::new();
    let mut buf = vec![0u8; 1 << 16];
    // Every thread's schedule starts with the warm-up.
    let start = measure_from - config.warmup;
    let mut next = 0u64;
    let mut broken = vec![false; conns.len()];
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let mut progress = false;
        while intended(start, rate, next) <= now {
            let c = (next % conns.len() as u64) as usize;
            let due = intended(start, rate, next);
            next += 1;
            if broken[c] {
                continue;
            }
            requests.queue(config, &mut conns[c], due);
            progress = true;
        }
        for (c, conn) in conns.iter_mut().enumerate() {
            if broken[c] {
                continue;
            }
            match exchange(config, conn, &mut buf, measure_from, &mut tally) {
                Some(moved) => progress |= moved,
                None => broken[c] = true,
            }
        }
        if !progress {
            // Nothing due, nothing arrived: wait a little, never past the
            // next request's time.
            let wait = intended(start, rate, next)
                .saturating_duration_since(Instant::now())
                .min(Duration::from_micros(100));
            std::thread::sleep(wait);
        }
    }
    let failed = broken.iter().filter(|&&b| b).count() as u64;
    Ok(tally.into_part(failed))
}

/// A connection the schedule never waits on: writes and reads that would
/// block return at once.
fn nonblocking_conn(config: &LoadConfig) -> std::io::Result<Conn> {
    let stream = connect(config)?;
    stream.tcp().set_nonblocking(true)?;
    Ok(Conn {
        stream,
        out: Vec::with_capacity(4096),
        input: Vec::with_capacity(65536),
        pending: std::collections::VecDeque::new(),
        written: 0,
    })
}

/// One turn of a connection: write what is queued, read what arrived and
/// count the replies it completes. `Some(moved)` says whether any bytes
/// moved; `None` that the connection broke.
fn exchange(
    config: &LoadConfig,
    conn: &mut Conn,
    buf: &mut [u8],
    measure_from: Instant,
    tally: &mut Tally,
) -> Option<bool> {
    let mut moved = false;
    if conn.written < conn.out.len() {
        match conn.stream.write(&conn.out[conn.written..]) {
            Ok(n) => {
                conn.written += n;
                moved |= n > 0;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return None,
        }
        if conn.written == conn.out.len() {
            conn.out.clear();
            conn.written = 0;
        }
    }
    match conn.stream.read(buf) {
        Ok(0) => return None,
        Ok(n) => {
            conn.input.extend_from_slice(&buf[..n]);
            moved = true;
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(_) => return None,
    }
    match take_replies(config, conn, measure_from, tally) {
        Drained::Broken => None,
        _ => Some(moved),
    }
}
