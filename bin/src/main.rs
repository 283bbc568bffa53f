//! The `segcore` server: parse the command line (memcached's flags where
//! they mean the same), start one executor per core, wait for SIGTERM/SIGINT
//! (or an enabled `shutdown` command), drain, exit 0.

mod cli;

use std::process::ExitCode;
use std::time::Duration;

use segcore_engine::runtime::Server;

fn main() -> ExitCode {
    let settings = match cli::parse() {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    raise_memlock_limit();
    // Block the stop signals before any executor thread exists, so every
    // thread inherits the mask and only the main thread receives them.
    let signals = stop_signals();
    // SAFETY: pthread_sigmask with a valid, initialized set and a null old set.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &signals, std::ptr::null_mut());
    }
    let verbose = settings.verbosity > 0;
    let listen = settings.listen;
    let cpus = settings.cpus.clone();
    let server = match Server::start(settings) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("segcore: {e}");
            return ExitCode::from(1);
        }
    };
    if verbose {
        eprintln!(
            "segcore: listening on {listen}, {} core(s) {cpus:?}",
            cpus.len()
        );
    }
    loop {
        let timeout = libc::timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        // SAFETY: sigtimedwait reads the valid set and timeout; the info
        // pointer may be null.
        let signal = unsafe { libc::sigtimedwait(&signals, std::ptr::null_mut(), &timeout) };
        if signal == libc::SIGTERM || signal == libc::SIGINT || server.shutdown_requested() {
            break;
        }
    }
    if verbose {
        eprintln!("segcore: shutting down");
    }
    server.shutdown(Duration::from_secs(10));
    ExitCode::SUCCESS
}

fn stop_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset initializes the zeroed set; sigaddset adds valid
    // signal numbers to it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        set
    }
}

/// glommio's io_uring rings and buffers count against RLIMIT_MEMLOCK on many
/// kernels. Raise the soft limit to the hard one (to unlimited when allowed);
/// if that is not enough, `Server::start` reports what to change.
fn raise_memlock_limit() {
    // SAFETY: getrlimit/setrlimit with a valid resource and a struct we own.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) != 0 {
            return;
        }
        let wanted = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        if libc::setrlimit(libc::RLIMIT_MEMLOCK, &wanted) != 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit);
        }
    }
}
