//! The cross-core hop on its own: round trips of one message between two
//! glommio executors pinned to CPUs 0 and 1 over a channel mesh (the same
//! mechanism the runtime forwards batches with), with one message in flight
//! and with 64, with executors that park at once and ones that spin 100 µs
//! before parking (segcore's default).
//!
//! Needs two CPUs; on one it measures scheduling, not the hop.

use std::time::{Duration, Instant};

use criterion::{criterion_main, Criterion, Throughput};
use glommio::channels::channel_mesh::{Full, MeshBuilder};
use glommio::{LocalExecutorBuilder, Placement};

const STOP: u64 = u64::MAX;

/// Time for `iters` round trips with up to `in_flight` outstanding.
fn round_trips(iters: u64, in_flight: u64, spin: Duration) -> Duration {
    let mesh: MeshBuilder<u64, Full> = MeshBuilder::full(2, 1024);
    let echo_mesh = mesh.clone();
    let echo = LocalExecutorBuilder::new(Placement::Fixed(1))
        .spin_before_park(spin)
        .spawn(move || async move {
            let (tx, mut rx) = echo_mesh.join().await.expect("join");
            // Peers are numbered in join order: the driver is the other one.
            let driver = 1 - tx.peer_id();
            let (_, from_driver) = rx.streams().pop().expect("one peer");
            while let Some(v) = from_driver.recv().await {
                if v == STOP {
                    break;
                }
                let _ = tx.send_to(driver, v).await;
            }
        })
        .expect("echo executor");
    let driver = LocalExecutorBuilder::new(Placement::Fixed(0))
        .spin_before_park(spin)
        .spawn(move || async move {
            let (tx, mut rx) = mesh.join().await.expect("join");
            let echo = 1 - tx.peer_id();
            let (_, from_echo) = rx.streams().pop().expect("one peer");
            let start = Instant::now();
            let (mut sent, mut received) = (0u64, 0u64);
            while received < iters {
                while sent < iters && sent - received < in_flight {
                    let _ = tx.send_to(echo, sent).await;
                    sent += 1;
                }
                from_echo.recv().await;
                received += 1;
            }
            let elapsed = start.elapsed();
            let _ = tx.send_to(echo, STOP).await;
            elapsed
        })
        .expect("driver executor");
    let elapsed = driver.join().expect("driver");
    echo.join().expect("echo");
    elapsed
}

fn hop(c: &mut Criterion) {
    let mut group = c.benchmark_group("cross_core_hop");
    group.sample_size(20);
    group.throughput(Throughput::Elements(1));
    for (name, spin) in [
        ("park", Duration::ZERO),
        ("spin100us", Duration::from_micros(100)),
    ] {
        group.bench_function(format!("round_trip_1_in_flight_{name}"), |b| {
            b.iter_custom(|iters| round_trips(iters, 1, spin))
        });
        group.bench_function(format!("per_message_64_in_flight_{name}"), |b| {
            b.iter_custom(|iters| round_trips(iters, 64, spin))
        });
    }
    group.finish();
}

/// criterion's macro generates an undocumented `pub fn`.
#[allow(missing_docs)]
mod harness {
    criterion::criterion_group!(benches, super::hop);
}
criterion_main!(harness::benches);
