//! Leveled logging through the `log` facade, to stderr, in memcached's
//! terms: without `-v` only errors and warnings; `-v` adds start/stop
//! notices, `-vv` connection events, `-vvv` every command. The `verbosity`
//! command changes the level at run time, as memcached's does.
//!
//! When a level is off its macros cost one relaxed atomic load (the
//! facade's max level); the command trace is checked once per batch.

use std::io::Write;

use log::{Level, Log, Metadata, Record};

struct Stderr;

static LOGGER: Stderr = Stderr;

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let kind = match record.level() {
            Level::Warn => "warning: ",
            _ => "",
        };
        // One write per line, so lines from several cores do not mix.
        let line = format!("segcore: {kind}{}\n", record.args());
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger at warnings and errors (before the command line is
/// read, so its warnings are logged too).
pub fn install() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Warn);
}
