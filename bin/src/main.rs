//! The `segcore` server: parse the command line (memcached's flags where
//! they mean the same), set the process up as memcached would (limits, `-u`,
//! `-d`, `-P`), start one executor per core, wait for SIGTERM/SIGINT (or an
//! enabled `shutdown` command), drain, exit 0. SIGUSR1 stops the same way
//! and, with `-e`, keeps the cache for a warm restart. SIGHUP rereads the
//! TLS and password files and never stops the server. As root, `-u` is
//! required, as memcached requires it.

mod cli;
mod logging;
mod process;
mod signals;

use std::process::ExitCode;
use std::time::Duration;

use segcore_engine::runtime::Server;

fn main() -> ExitCode {
    logging::install();
    let (settings, options) = match cli::parse() {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    segcore_engine::runtime::set_verbosity(u32::from(settings.verbosity));
    process::exit_on_panic(options.core_dumps);
    if let Err(code) = set_up_process(&settings, &options) {
        return code;
    }
    let signals = signals::Signals::block();
    let summary = logging::StartLine::of(&settings);
    // A stop signal while the cores start (a large warm restart can take a
    // while) ends the start instead of waiting for it.
    let stop_asked = || signals::stops(signals.next(Duration::ZERO));
    let server = match Server::start_unless(settings, &stop_asked) {
        Ok(server) => server,
        Err(segcore_engine::runtime::StartError::Interrupted) => {
            log::info!("stopped while starting");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(1);
        }
    };
    // Written once the server listens, removed when this goes out of scope.
    let _pidfile = match options.pidfile.as_deref().map(process::PidFile::write) {
        Some(Err(e)) => {
            log::warn!("{e}");
            None
        }
        Some(Ok(pidfile)) => Some(pidfile),
        None => None,
    };
    // One line at start, at every level (most services say where they
    // listen; memcached says nothing, which leaves operators guessing).
    logging::notice(&summary.line(server.started()));
    let stop = serve_until_stopped(&server, &signals);
    log::info!("shutting down");
    // As memcached: SIGUSR1 is the graceful stop that keeps the cache for
    // a warm restart (with -e); SIGTERM and SIGINT drain and exit.
    if stop == Some(libc::SIGUSR1) {
        server.shutdown_keeping_cache(Duration::from_secs(10));
    } else {
        server.shutdown(Duration::from_secs(10));
    }
    ExitCode::SUCCESS
}

/// Sets the process up as memcached does, before any executor thread
/// exists: limits first (raising a hard limit needs root), then the
/// identity (`-u`; root without it is refused), then the fork (`-d`).
fn set_up_process(
    settings: &segcore_engine::runtime::Settings,
    options: &process::ProcessOptions,
) -> Result<(), ExitCode> {
    if process::is_root() && options.user.is_none() {
        // memcached's words and its exit status (EX_USAGE).
        eprintln!("can't run as root without the -u switch");
        return Err(ExitCode::from(64));
    }
    segcore_engine::storage::tune_malloc();
    process::raise_memlock_limit();
    match process::raise_open_files_limit(settings.conn_limit) {
        Some(available) if available < settings.conn_limit as u64 + process::RESERVED_FDS => {
            log::warn!(
                "only {available} file descriptors allowed (ulimit -n), too few \
                 for -c {}: raise LimitNOFILE= / ulimit -n, start as root, or lower -c",
                settings.conn_limit
            )
        }
        _ => {}
    }
    if options.core_dumps {
        process::raise_core_limit();
    }
    // With -d the parent exits 0 at the fork: a port already taken must be
    // said before that, in the foreground, with a failing status.
    if options.daemon {
        if let Err(e) = settings.check_ports() {
            log::error!("{e}");
            return Err(ExitCode::from(1));
        }
    }
    let set_up = options
        .user
        .as_deref()
        .map_or(Ok(()), process::drop_privileges)
        .and_then(|()| {
            if options.daemon {
                process::daemonize(settings.verbosity > 0)
            } else {
                Ok(())
            }
        });
    if let Err(e) = set_up {
        log::error!("{e}");
        return Err(ExitCode::from(71));
    }
    if options.lock_memory {
        process::lock_all_memory();
    }
    Ok(())
}

/// Serves until a stop signal (returned) or an enabled `shutdown` command
/// (`None`); SIGHUP rereads, as memcached's does, what can change without
/// a restart, and never stops the server.
fn serve_until_stopped(server: &Server, signals: &signals::Signals) -> Option<i32> {
    loop {
        let signal = signals.next(Duration::from_millis(100));
        if signals::stops(signal) {
            return signal;
        }
        if signal == Some(libc::SIGHUP) {
            let done = server.reload();
            if done.is_empty() {
                log::info!("SIGHUP: nothing to reread (no -Z, -S or -Y)");
            }
            for line in done {
                match line {
                    Ok(what) => log::info!("SIGHUP: {what}"),
                    Err(why) => log::warn!("SIGHUP: {why}"),
                }
            }
        }
        if server.shutdown_requested() {
            return None;
        }
    }
}
