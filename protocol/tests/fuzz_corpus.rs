//! Replays the checked-in fuzz corpus (protocol/fuzz/corpus/*) through the
//! same invariant checks the fuzz targets run, so every input the fuzzer ever
//! kept — and every crash it found, once fixed — stays a regression test
//! under a plain `cargo test`.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

fn replay(target: &str, check: impl Fn(&[u8]) -> usize) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files = 0;
    let mut requests = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).expect("corpus file");
        requests += check(&data);
        files += 1;
    }
    assert!(files > 0, "no corpus for {target}");
    assert!(requests > 0, "the {target} corpus parsed no request at all");
}

#[test]
fn text_corpus_keeps_invariants() {
    replay("text", checks::check_text);
}

#[test]
fn meta_corpus_keeps_invariants() {
    replay("meta", |data| {
        let mut line = vec![b'm'];
        line.extend_from_slice(data);
        checks::check_text(&line)
    });
}

#[test]
fn binary_corpus_keeps_invariants() {
    replay("binary", checks::check_binary);
}
