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

/// Writes `line` whatever the level: the one line a server logs when it
/// starts serving.
pub fn notice(line: &str) {
    let _ = std::io::stderr()
        .lock()
        .write_all(format!("segcore: {line}\n").as_bytes());
}

/// What the start line says of the settings.
pub struct StartLine {
    version: String,
    listen: Vec<std::net::SocketAddr>,
    cpus: Vec<usize>,
    memory_mb: usize,
    eviction: &'static str,
    memory_file: Option<std::path::PathBuf>,
}

impl StartLine {
    /// Taken before the settings go to the server.
    pub fn of(settings: &segcore_engine::runtime::Settings) -> StartLine {
        StartLine {
            version: settings.version.clone(),
            listen: settings
                .listeners()
                .into_iter()
                .filter(|(_, flag)| *flag != "--metrics-listen")
                .map(|(addr, _)| addr)
                .collect(),
            cpus: settings.cpus.clone(),
            memory_mb: settings.memory_bytes >> 20,
            eviction: settings.eviction.name(),
            memory_file: settings.memory_file.clone(),
        }
    }

    /// `segcore 1.6.21-segcore-0.1.0: listening on 127.0.0.1:11211, 2 cores
    /// (CPUs 0,1), 64 MB, eviction s3fifo[, warm restart from PATH: N items
    /// in 0.42 s]`.
    pub fn line(&self, started: segcore_engine::runtime::Started) -> String {
        let listen: Vec<String> = self.listen.iter().map(ToString::to_string).collect();
        let cpus: Vec<String> = self.cpus.iter().map(ToString::to_string).collect();
        let mut line = format!(
            "version {}, listening on {}, {} core(s) (CPUs {}), {} MB, eviction {}",
            self.version,
            listen.join(" "),
            self.cpus.len(),
            cpus.join(","),
            self.memory_mb,
            self.eviction
        );
        if let Some(path) = &self.memory_file {
            match started.restored {
                Some(items) => line.push_str(&format!(
                    ", warm restart from {}: {items} items in {:.2} s",
                    path.display(),
                    started.took.as_secs_f64()
                )),
                None => line.push_str(&format!(", memory file {} (cold start)", path.display())),
            }
        }
        line
    }
}
