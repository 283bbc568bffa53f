//! The `segcore` server binary.
//!
//! The network runtime is not built yet (see the "segcore server" issue), so
//! this binary says so plainly and exits non-zero rather than pretending to
//! serve.

fn main() -> std::process::ExitCode {
    eprintln!(
        "segcore {}: the server runtime is not implemented yet; \
         only the protocol crate is usable so far (see README.md).",
        env!("CARGO_PKG_VERSION")
    );
    std::process::ExitCode::from(2)
}
