//! `segcore-bench`, the load generator.
//!
//! Not built yet (see the "segcore-bench" issue): it exits non-zero with a
//! message rather than produce numbers it did not measure.

fn main() -> std::process::ExitCode {
    eprintln!(
        "segcore-bench {}: not implemented yet (see README.md).",
        env!("CARGO_PKG_VERSION")
    );
    std::process::ExitCode::from(2)
}
