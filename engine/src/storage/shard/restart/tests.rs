//! Warm restart: what a graceful stop saves comes back, nothing stale or
//! expired does, and anything that does not match starts empty.

use super::super::*;
use super::RestartError;

const T0: u32 = 1_700_000_000;

/// A memory file in the temp folder, removed (with its metadata) on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("segcore-restart-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(meta_of(&path));
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_file(meta_of(&self.0));
    }
}

fn meta_of(path: &std::path::Path) -> std::path::PathBuf {
    super::meta_path(path)
}

fn config(file: &TempFile) -> ShardConfig {
    ShardConfig {
        memory_bytes: 8 << 20,
        segment_size: 64 << 10,
        eviction: Policy::Merge,
        index_pieces: Some(4),
        restart: Some(RestartFile {
            path: file.0.clone(),
            layout_tag: 7,
            run: 42,
            core: 0,
            cores: 1,
            restore_run: None,
        }),
    }
}

fn open(config: &ShardConfig, now: u32) -> (Shard, Result<u64, RestartError>) {
    let mut shard = Shard::new(config).expect("config");
    shard.set_time(now);
    let restored = shard.restore(config).map(|r| r.items);
    (shard, restored)
}

fn k(key: &str) -> HashedKey<'_> {
    HashedKey::new(key.as_bytes())
}

fn store(shard: &mut Shard, mode: StoreMode, key: &str, value: &[u8], flags: u32, exptime: i64) {
    let result = shard.store(k(key), value, &StoreRequest::new(mode, flags, exptime));
    assert!(
        matches!(result, StoreResult::Stored(_)),
        "{key}: {result:?}"
    );
}

/// What a client would read: value, flags, cas.
fn read(shard: &mut Shard, key: &str) -> Option<(Vec<u8>, u32, u64)> {
    shard
        .read(k(key), &ReadOptions::get(true))
        .map(|hit| hit.item)
        .map(|v| (v.value.to_vec(), v.flags, v.cas))
}

#[test]
fn a_saved_shard_comes_back_whole() {
    let file = TempFile::new("whole");
    let config = config(&file);
    let (mut shard, first) = open(&config, T0);
    assert_eq!(first, Err(RestartError::NoMetadata));
    for i in 0..2000 {
        let value = vec![b'a' + (i % 26) as u8; 1 + (i * 37) % 3000];
        store(
            &mut shard,
            StoreMode::Set,
            &format!("key{i}"),
            &value,
            i as u32,
            0,
        );
    }
    store(&mut shard, StoreMode::Set, "short", b"gone soon", 0, 2);
    store(&mut shard, StoreMode::Set, "long", b"stays", 5, 3600);
    store(&mut shard, StoreMode::Set, "app", b"a", 0, 0);
    store(&mut shard, StoreMode::Append, "app", b"b", 0, 0);
    store(&mut shard, StoreMode::Set, "n", b"41", 0, 0);
    shard.arith(
        k("n"),
        &ArithRequest {
            incr: true,
            delta: 1,
            ..ArithRequest::default()
        },
    );
    assert!(matches!(
        shard.delete(k("key5"), &DeleteOptions::default()),
        DeleteResult::Deleted
    ));
    let before: Vec<_> = (0..2000)
        .map(|i| read(&mut shard, &format!("key{i}")))
        .collect();
    let cas_before: Vec<u64> = before.iter().flatten().map(|(_, _, cas)| *cas).collect();
    let items = shard.stats().curr_items;
    shard.save(&config).expect("save");
    drop(shard);

    // Three seconds later: the 2 s item has expired while the server was down.
    let (mut shard, restored) = open(&config, T0 + 3);
    assert_eq!(restored, Ok(items - 1));
    assert_eq!(shard.stats().curr_items, items - 1);
    shard.check_invariants().expect("consistent after restore");
    assert!(!meta_of(&file.0).exists(), "the metadata is used once");
    for (i, expected) in before.iter().enumerate() {
        assert_eq!(&read(&mut shard, &format!("key{i}")), expected, "key{i}");
    }
    assert_eq!(read(&mut shard, "key5"), None, "deleted stays deleted");
    assert_eq!(read(&mut shard, "short"), None);
    assert_eq!(
        read(&mut shard, "long").map(|v| (v.0, v.1)),
        Some((b"stays".to_vec(), 5))
    );
    assert_eq!(read(&mut shard, "app").map(|v| v.0), Some(b"ab".to_vec()));
    assert_eq!(read(&mut shard, "n").map(|v| v.0), Some(b"42".to_vec()));
    // New writes get cas values never handed out before the restart.
    for i in 0..500 {
        store(&mut shard, StoreMode::Set, &format!("key{i}"), b"new", 0, 0);
        let (_, _, cas) = read(&mut shard, &format!("key{i}")).expect("stored");
        assert!(!cas_before.contains(&cas), "cas {cas} reused");
    }
    shard
        .check_invariants()
        .expect("consistent after more writes");
}

#[test]
fn a_restore_without_a_save_starts_empty() {
    let file = TempFile::new("nosave");
    let config = config(&file);
    let (mut shard, _) = open(&config, T0);
    store(&mut shard, StoreMode::Set, "k", b"v", 0, 0);
    drop(shard); // a crash or SIGTERM: no metadata
    let (mut shard, restored) = open(&config, T0);
    assert_eq!(restored, Err(RestartError::NoMetadata));
    assert_eq!(read(&mut shard, "k"), None, "old bytes are never served");
    store(&mut shard, StoreMode::Set, "k2", b"v2", 0, 0);
    assert_eq!(read(&mut shard, "k2").map(|v| v.0), Some(b"v2".to_vec()));
}

/// Saves one item under `config`, then restores under `other`.
fn restore_under(
    name: &str,
    tweak: impl Fn(&mut ShardConfig),
    damage: impl Fn(&mut Vec<u8>),
) -> (Shard, Result<u64, RestartError>) {
    let file = TempFile::new(name);
    let config = config(&file);
    let (mut shard, _) = open(&config, T0);
    store(&mut shard, StoreMode::Set, "k", b"v", 0, 0);
    shard.save(&config).expect("save");
    drop(shard);
    let mut meta = std::fs::read(meta_of(&file.0)).expect("metadata");
    damage(&mut meta);
    std::fs::write(meta_of(&file.0), &meta).expect("rewrite");
    let mut other = config.clone();
    tweak(&mut other);
    let (mut shard, restored) = open(&other, T0);
    assert_eq!(read(&mut shard, "k"), None, "{name}: nothing restored");
    // It works as an empty shard.
    store(&mut shard, StoreMode::Set, "after", b"ok", 0, 0);
    assert_eq!(read(&mut shard, "after").map(|v| v.0), Some(b"ok".to_vec()));
    shard.check_invariants().expect("consistent");
    assert!(!meta_of(&file.0).exists(), "{name}: metadata not reused");
    (shard, restored)
}

#[test]
fn other_settings_or_damaged_metadata_start_empty() {
    let keep = |_: &mut Vec<u8>| {};
    let same = |_: &mut ShardConfig| {};
    let mismatch = |r: Result<u64, RestartError>| matches!(r, Err(RestartError::Mismatch(_)));
    let (_, r) = restore_under("memory", |c| c.memory_bytes = 16 << 20, keep);
    assert!(mismatch(r));
    let (_, r) = restore_under("segment", |c| c.segment_size = 32 << 10, keep);
    assert!(mismatch(r));
    let (_, r) = restore_under("policy", |c| c.eviction = Policy::Fifo, keep);
    assert!(mismatch(r));
    let (_, r) = restore_under(
        "layout",
        |c| c.restart.as_mut().expect("file").layout_tag = 8,
        keep,
    );
    assert!(mismatch(r));
    let (_, r) = restore_under("truncated", same, |m| m.truncate(m.len() / 2));
    assert!(matches!(r, Err(RestartError::Torn(_))), "{r:?}");
    let (_, r) = restore_under("flipped", same, |m| m[100] ^= 1);
    assert_eq!(r, Err(RestartError::Torn("checksum")));
    let (_, r) = restore_under("version", same, |m| m[8] = 99);
    assert_eq!(r, Err(RestartError::Version(99)));
    let (_, r) = restore_under("empty", same, |m| m.clear());
    assert!(matches!(r, Err(RestartError::Torn(_))), "{r:?}");
}

#[test]
fn a_delayed_flush_survives_the_restart() {
    let file = TempFile::new("flush");
    let config = config(&file);
    for (restart_at, present) in [(T0 + 5, true), (T0 + 20, false)] {
        let (mut shard, _) = open(&config, T0);
        store(&mut shard, StoreMode::Set, "k", b"v", 0, 0);
        shard.flush_all(Some(10));
        shard.save(&config).expect("save");
        drop(shard);
        let (mut shard, restored) = open(&config, restart_at);
        assert!(restored.is_ok());
        assert_eq!(
            read(&mut shard, "k").is_some(),
            present,
            "restart at +{}",
            restart_at - T0
        );
        // Still pending when restored early: it applies on time.
        shard.set_time(T0 + 20);
        assert_eq!(read(&mut shard, "k"), None);
    }
}

#[test]
fn a_save_of_another_run_or_core_is_refused() {
    let keep = |_: &mut Vec<u8>| {};
    let (_, r) = restore_under(
        "run",
        |c| c.restart.as_mut().expect("file").restore_run = Some(41),
        keep,
    );
    assert!(
        matches!(r, Err(RestartError::Mismatch(m)) if m.contains("run")),
        "{r:?}"
    );
    let (_, r) = restore_under("core", |c| c.restart.as_mut().expect("file").core = 1, keep);
    assert!(
        matches!(r, Err(RestartError::Mismatch(m)) if m.contains("core")),
        "{r:?}"
    );
    let (_, r) = restore_under(
        "cores",
        |c| c.restart.as_mut().expect("file").cores = 2,
        keep,
    );
    assert!(
        matches!(r, Err(RestartError::Mismatch(m)) if m.contains("core count")),
        "{r:?}"
    );
}

/// Where `needle` starts in the memory file.
fn find_in(file: &TempFile, needle: &[u8]) -> usize {
    let bytes = std::fs::read(&file.0).expect("memory file");
    bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("bytes in the file")
}

/// A byte of the memory file that changed after the save (a value or a
/// key) takes down its segment, never the shard, and never serves a wrong
/// value or a key never stored.
#[test]
fn a_changed_segment_is_dropped_and_the_rest_restored() {
    for (name, target) in [("value", &b"VALUE-OF-VICTIM"[..]), ("key", b"victim-key")] {
        let file = TempFile::new(&format!("crc-{name}"));
        let config = config(&file);
        let (mut shard, _) = open(&config, T0);
        store(
            &mut shard,
            StoreMode::Set,
            "victim-key",
            b"VALUE-OF-VICTIM",
            0,
            0,
        );
        // Fill past the first segment so others survive the drop.
        for i in 0..200 {
            store(
                &mut shard,
                StoreMode::Set,
                &format!("other{i}"),
                &[b'o'; 1000],
                0,
                0,
            );
        }
        shard.save(&config).expect("save");
        let items = shard.stats().curr_items;
        drop(shard);
        let at = find_in(&file, target);
        let mut bytes = std::fs::read(&file.0).expect("memory file");
        bytes[at] ^= 0x20;
        std::fs::write(&file.0, &bytes).expect("tamper");

        let mut shard = Shard::new(&config).expect("config");
        shard.set_time(T0);
        let restored = shard.restore(&config).expect("the rest restores");
        assert_eq!(restored.dropped_segments, 1, "{name}");
        assert!(
            restored.items > 0 && restored.items < items,
            "{name}: {restored:?}"
        );
        assert_eq!(read(&mut shard, "victim-key"), None, "{name}: never served");
        assert_eq!(
            read(&mut shard, "Victim-key"),
            None,
            "{name}: no key never stored"
        );
        let survivors = (0..200)
            .filter(|i| read(&mut shard, &format!("other{i}")).is_some())
            .count() as u64;
        assert_eq!(survivors, restored.items, "{name}");
        for i in 0..200 {
            if let Some((value, _, _)) = read(&mut shard, &format!("other{i}")) {
                assert_eq!(value, vec![b'o'; 1000]);
            }
        }
        shard.check_invariants().expect("consistent");
        // It keeps working, in the freed segment too.
        for i in 0..300 {
            store(
                &mut shard,
                StoreMode::Set,
                &format!("new{i}"),
                &[b'n'; 1000],
                0,
                0,
            );
        }
        shard
            .check_invariants()
            .expect("consistent after more writes");
    }
}
