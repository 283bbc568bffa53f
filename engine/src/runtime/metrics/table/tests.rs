//! Every row's kind is how it behaves under `stats reset`.

use super::*;
use crate::runtime::metrics::report::{ConnCounters, CoreReport};
use crate::storage::{HashedKey, Policy, ReadOptions, Shard, ShardConfig, StoreMode, StoreRequest};

/// A core's report of its shard and connection counters.
fn report(shard: &Shard, conns: ConnCounters) -> CoreReport {
    CoreReport {
        conns,
        ..crate::runtime::metrics::snapshot::of_shard(shard)
    }
}

/// `stats reset` zeroes every row marked a counter and keeps every
/// gauge: the kind a row says is the kind it behaves as (every row of
/// the server-wide and per-core tables). Connection
/// counters all start non-zero (a struct literal, so a new counter
/// must be given a value here); the shard's come from real traffic
/// under s3fifo (whose main FIFO sets the merge threshold gauge).
#[test]
fn a_reset_zeroes_every_counter_row_and_keeps_every_gauge() {
    let mut shard = Shard::new(&ShardConfig {
        memory_bytes: 256 << 10,
        segment_size: 8 << 10,
        eviction: Policy::S3Fifo,
        index_pieces: Some(2),
        restart: None,
    })
    .expect("config");
    shard.set_time(1_700_000_000);
    // Cache-aside: each key asked for, stored on a miss; one in four
    // asked for again (so s3fifo's main FIFO fills and merges by
    // frequency).
    for i in 0..40_000 {
        let key = format!("k:{i}");
        for _ in 0..1 + usize::from(i % 4 == 0) {
            let hashed = HashedKey::new(key.as_bytes());
            if shard
                .read(hashed, &ReadOptions::get(true))
                .map(|hit| hit.item)
                .is_none()
            {
                shard.store(hashed, b"value", &StoreRequest::new(StoreMode::Set, 0, 0));
            }
        }
    }
    assert!(shard.stats().merges > 0 && shard.stats().merge_threshold > 0);
    let conns = ConnCounters {
        curr_connections: 7,
        total_connections: 7,
        rejected_connections: 7,
        requests: 7,
        forwarded_out: 7,
        forwarded_in: 7,
        bytes_read: 7,
        bytes_written: 7,
        cmd_flush: 7,
        store_too_large: 7,
        store_no_memory: 7,
        idle_kicks: 7,
        read_buf_oom: 7,
        large_request_reclaims: 7,
        auth_cmds: 7,
        auth_errors: 7,
        ssl_handshake_errors: 7,
        ssl_new_sessions: 7,
    };
    let before = report(&shard, conns);
    shard.reset_stats();
    let mut after_conns = conns;
    after_conns.reset();
    let after = report(&shard, after_conns);
    let view = |report: &CoreReport| {
        let mut rows = core(report);
        rows.0.extend(segments(report).0);
        let g = General {
            t: Totals::of(std::slice::from_ref(report)),
            conn_limit: 1024,
            memory_bytes: 64 << 20,
            threads: 1,
            uptime: 5,
            now: 1_700_000_005,
        };
        for table in [HEAD, CONNECTIONS_AND_COMMANDS, TLS, TRAFFIC_AND_ITEMS] {
            rows.table(table, &g);
        }
        rows.0
    };
    let (rows_before, rows_after) = (view(&before), view(&after));
    assert_eq!(rows_before.len(), rows_after.len());
    for (b, a) in rows_before.iter().zip(&rows_after) {
        let name = b.stat.or(b.prom).unwrap_or("?");
        match b.kind {
            Kind::Counter => assert_eq!(a.value, Value::Int(0), "counter {name}"),
            Kind::Gauge => assert_eq!(a.value, b.value, "gauge {name}"),
        }
    }
}
