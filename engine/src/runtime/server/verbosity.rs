//! memcached's verbosity (`-v` count, the `verbosity` command) as the log
//! level: one process-wide setting, changed at run time by any core.

/// Sets the logging level for memcached's verbosity (`-v` count or the
/// `verbosity` command): 0 errors and warnings, 1 notices, 2 connection
/// events, 3 and up every command.
pub fn set_verbosity(level: u32) {
    log::set_max_level(match level {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        2 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    });
}

/// The verbosity the log level stands for (what `stats settings` shows).
pub fn verbosity() -> u32 {
    match log::max_level() {
        log::LevelFilter::Off | log::LevelFilter::Error | log::LevelFilter::Warn => 0,
        log::LevelFilter::Info => 1,
        log::LevelFilter::Debug => 2,
        log::LevelFilter::Trace => 3,
    }
}
