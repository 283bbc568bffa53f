//! The set of memory files: restored together from one run or not at all,
//! files of unused cores removed, one server at a time.

use super::*;
use crate::storage::{HashedKey, Policy, RestartFile, Shard, StoreMode, StoreRequest};

/// A folder for one test's memory files, removed on drop.
struct Folder(PathBuf);

impl Folder {
    fn new(name: &str) -> Folder {
        let path =
            std::env::temp_dir().join(format!("segcore-files-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("folder");
        Folder(path)
    }

    fn path(&self) -> PathBuf {
        self.0.join("mem")
    }

    fn exists(&self, name: &str) -> bool {
        self.0.join(name).exists()
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Core `core` of `cores`, of run `run`, taking back `restore`.
fn config(folder: &Folder, core: u32, cores: u32, run: u64, restore: Option<u64>) -> ShardConfig {
    ShardConfig {
        memory_bytes: 1 << 20,
        segment_size: 64 << 10,
        eviction: Policy::Fifo,
        index_pieces: Some(2),
        restart: Some(RestartFile {
            path: folder.0.join(format!("mem.{core}")),
            layout_tag: u64::from(cores),
            run,
            core,
            cores,
            restore_run: restore,
        }),
    }
}

fn configs(folder: &Folder, cores: u32, run: u64) -> Vec<ShardConfig> {
    (0..cores)
        .map(|core| config(folder, core, cores, run, None))
        .collect()
}

/// Runs `cores` shards of run `run`, each storing `key`=`value`, and saves.
fn save_run(folder: &Folder, cores: u32, run: u64, value: &[u8]) {
    for config in configs(folder, cores, run) {
        let mut shard = Shard::new(&config).expect("config");
        shard.set_time(1_700_000_000);
        shard.store(
            HashedKey::new(b"key"),
            value,
            &StoreRequest::new(StoreMode::Set, 0, 0),
        );
        shard.save(&config).expect("save");
    }
}

#[test]
fn every_core_saved_by_one_run_is_restored() {
    let folder = Folder::new("whole");
    save_run(&folder, 2, 7, b"old");
    let files = MemoryFiles::open(&folder.path(), &configs(&folder, 2, 0)).expect("open");
    assert_eq!(files.restore, Some(7));
    assert_eq!(files.refused, None);
    assert_ne!(files.run, 7, "a new run id");
    assert!(folder.exists("mem.0.meta") && folder.exists("mem.1.meta"));
}

/// `-t 2` saves, `-t 1` starts (and must neither restore nor leave core
/// 1's save behind), writes and saves, `-t 2` starts: nothing old may
/// come back.
#[test]
fn a_run_with_fewer_cores_removes_the_others_files() {
    let folder = Folder::new("fewer");
    save_run(&folder, 2, 7, b"old");
    let files = MemoryFiles::open(&folder.path(), &configs(&folder, 1, 0)).expect("open");
    assert_eq!(files.restore, None);
    assert!(
        files
            .refused
            .as_deref()
            .is_some_and(|w| w.contains("core count")),
        "{files:?}"
    );
    assert!(!folder.exists("mem.1") && !folder.exists("mem.1.meta"));
    assert!(!folder.exists("mem.0.meta"), "refused saves are removed");
    assert_eq!(files.removed.len(), 2);
    let run = files.run;
    drop(files);
    save_run(&folder, 1, run, b"new");
    let files = MemoryFiles::open(&folder.path(), &configs(&folder, 2, 0)).expect("open");
    assert_eq!(files.restore, None, "{files:?}");
    assert!(files.refused.is_some());
    assert!(!folder.exists("mem.0.meta"));
}

#[test]
fn saves_of_different_runs_are_never_mixed() {
    let folder = Folder::new("mixed");
    save_run(&folder, 2, 7, b"old");
    let old_core_1 = std::fs::read(folder.0.join("mem.1.meta")).expect("meta");
    save_run(&folder, 2, 8, b"new");
    std::fs::write(folder.0.join("mem.1.meta"), old_core_1).expect("put back");
    let files = MemoryFiles::open(&folder.path(), &configs(&folder, 2, 0)).expect("open");
    assert_eq!(files.restore, None);
    assert!(
        files
            .refused
            .as_deref()
            .is_some_and(|w| w.contains("another run")),
        "{files:?}"
    );
    assert!(!folder.exists("mem.0.meta") && !folder.exists("mem.1.meta"));
}

#[test]
fn a_missing_or_swapped_save_refuses_them_all() {
    let folder = Folder::new("missing");
    save_run(&folder, 2, 7, b"old");
    std::fs::remove_file(folder.0.join("mem.1.meta")).expect("remove");
    let files = MemoryFiles::open(&folder.path(), &configs(&folder, 2, 0)).expect("open");
    assert_eq!(files.restore, None);
    assert!(files
        .refused
        .as_deref()
        .is_some_and(|w| w.contains("core 1 has no save")));
    assert!(!folder.exists("mem.0.meta"));
    drop(files);

    save_run(&folder, 2, 9, b"old");
    let (zero, one) = (folder.0.join("mem.0.meta"), folder.0.join("mem.1.meta"));
    let (a, b) = (std::fs::read(&zero).unwrap(), std::fs::read(&one).unwrap());
    std::fs::write(&zero, b).unwrap();
    std::fs::write(&one, a).unwrap();
    let files = MemoryFiles::open(&folder.path(), &configs(&folder, 2, 0)).expect("open");
    assert_eq!(files.restore, None);
    assert!(
        files
            .refused
            .as_deref()
            .is_some_and(|w| w.contains("another core")),
        "{files:?}"
    );
}

#[test]
fn no_save_at_all_is_a_cold_start_with_nothing_to_say() {
    let folder = Folder::new("cold");
    let files = MemoryFiles::open(&folder.path(), &configs(&folder, 2, 0)).expect("open");
    assert_eq!((files.restore, files.refused), (None, None));
}

#[test]
fn one_server_at_a_time() {
    let folder = Folder::new("lock");
    let first = MemoryFiles::open(&folder.path(), &configs(&folder, 2, 0)).expect("first");
    let second = MemoryFiles::open(&folder.path(), &configs(&folder, 2, 0));
    match second {
        Err(MemoryFilesError::InUse { holder, .. }) => {
            assert_eq!(holder, Some(std::process::id()))
        }
        other => panic!("second server not refused: {other:?}"),
    }
    drop(first);
    MemoryFiles::open(&folder.path(), &configs(&folder, 2, 0)).expect("free again");
}
