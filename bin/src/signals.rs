//! The signals the server answers, taken on the main thread only: they are
//! blocked before any executor thread exists (every thread inherits the
//! mask) and polled with `sigtimedwait`, so no handler runs on a core.

use std::time::Duration;

/// SIGTERM, SIGINT, SIGUSR1 (stop) and SIGHUP (reload).
pub struct Signals(libc::sigset_t);

impl Signals {
    /// Blocks the handled signals on this thread and every thread it
    /// starts from now on.
    pub fn block() -> Signals {
        // SAFETY: sigemptyset initializes the zeroed set; sigaddset adds
        // valid signal numbers to it.
        let set = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGUSR1, libc::SIGHUP] {
                libc::sigaddset(&mut set, signal);
            }
            set
        };
        // SAFETY: pthread_sigmask with a valid, initialized set and a null
        // old set.
        unsafe {
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        Signals(set)
    }

    /// The next pending handled signal, waiting up to `timeout`; `None`
    /// when none came.
    pub fn next(&self, timeout: Duration) -> Option<i32> {
        let timeout = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: sigtimedwait reads the valid set and timeout; the info
        // pointer may be null.
        let signal = unsafe { libc::sigtimedwait(&self.0, std::ptr::null_mut(), &timeout) };
        (signal > 0).then_some(signal)
    }
}

/// Whether `signal` stops the server (SIGHUP does not).
pub fn stops(signal: Option<i32>) -> bool {
    matches!(signal, Some(libc::SIGTERM | libc::SIGINT | libc::SIGUSR1))
}
