//! Process set-up that memcached's init scripts and unit files rely on:
//! resource limits, dropping root (`-u`), running in the background (`-d`)
//! and the pid file (`-P`). All of it happens before the first executor
//! thread exists: `fork` and `setuid` are only safe in a one-thread process.

use std::ffi::CString;
use std::path::{Path, PathBuf};

/// What the command line asked of the process itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessOptions {
    /// Become this user when started as root (`-u`).
    pub user: Option<String>,
    /// Detach and run in the background (`-d`).
    pub daemon: bool,
    /// Where to write the process id (`-P`).
    pub pidfile: Option<PathBuf>,
    /// Lock all memory, present and future (`-k`).
    pub lock_memory: bool,
    /// Raise the core file size limit (`-r`).
    pub core_dumps: bool,
}

/// glommio's io_uring rings and buffers count against RLIMIT_MEMLOCK on many
/// kernels. Raise the soft limit to the hard one (to unlimited when allowed);
/// if that is not enough, `Server::start` reports what to change. Must run
/// before privileges are dropped: only root may raise the hard limit.
pub fn raise_memlock_limit() {
    raise_limit(libc::RLIMIT_MEMLOCK);
}

/// `-r`: allow core files of any size (up to the hard limit when not root).
pub fn raise_core_limit() {
    raise_limit(libc::RLIMIT_CORE);
}

/// Each connection is a file descriptor: make room for `-c` of them plus
/// the listeners, rings and files a core needs (memcached raises the same
/// limit for its `-c`). Returns the descriptors available, or `None` if
/// the limit could not be read.
pub fn raise_open_files_limit(connections: usize) -> Option<u64> {
    let wanted = connections as u64 + RESERVED_FDS;
    // SAFETY: getrlimit/setrlimit with a valid resource and a struct we own.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur >= wanted {
            return Some(limit.rlim_cur);
        }
        let raised = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: limit.rlim_max.max(wanted),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return Some(wanted);
        }
        // Not root: as far as the hard limit allows.
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
            return Some(limit.rlim_max);
        }
        Some(limit.rlim_cur)
    }
}

/// Descriptors besides client connections: listeners, io_uring rings,
/// eventfds, standard streams.
pub const RESERVED_FDS: u64 = 64;

/// The resource argument of getrlimit/setrlimit: glibc gives it a type of
/// its own, other C libraries an int.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type Resource = libc::c_int;

fn raise_limit(resource: Resource) {
    // SAFETY: getrlimit/setrlimit with a valid resource and a struct we own.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(resource, &mut limit) != 0 {
            return;
        }
        let wanted = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        if libc::setrlimit(resource, &wanted) != 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(resource, &limit);
        }
    }
}

/// Root by real or effective id, as memcached judges it (for `-u`).
pub fn is_root() -> bool {
    // SAFETY: getuid and geteuid cannot fail and touch no memory.
    unsafe { libc::getuid() == 0 || libc::geteuid() == 0 }
}

/// `-u`: when running as root, become `user` (its uid, its primary group,
/// no supplementary groups), as memcached does. Not root: nothing to drop.
pub fn drop_privileges(user: &str) -> Result<(), String> {
    if !is_root() {
        return Ok(());
    }
    let name = CString::new(user).map_err(|_| format!("invalid user name {user:?}"))?;
    // SAFETY: getpwnam reads the NUL-terminated name; the entry it returns
    // (static storage) is read at once, before any other passwd call.
    let (uid, gid) = unsafe {
        let entry = libc::getpwnam(name.as_ptr());
        if entry.is_null() {
            return Err(format!("can't find the user {user} to switch to"));
        }
        ((*entry).pw_uid, (*entry).pw_gid)
    };
    // SAFETY: plain syscalls on integers; setgroups is given no list. glibc
    // applies them to every thread, and there is only this one yet.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0
            && std::io::Error::last_os_error().raw_os_error() != Some(libc::EPERM)
        {
            return Err(format!(
                "failed to drop supplementary groups: {}",
                std::io::Error::last_os_error()
            ));
        }
        if libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
            return Err(format!("failed to assume the identity of user {user}"));
        }
    }
    Ok(())
}

/// `-d`: fork, let the parent exit 0, start a new session, move to `/` and
/// point stdin/stdout/stderr at /dev/null (stderr kept when `verbose`, as
/// memcached keeps it with `-v`). Start-up errors after this point are only
/// seen with `-v`, as with memcached.
pub fn daemonize(verbose: bool) -> Result<(), String> {
    // SAFETY: called before any thread is spawned, so the child is a
    // complete copy; the parent leaves with _exit and runs no destructors.
    unsafe {
        match libc::fork() {
            -1 => return Err(format!("fork failed: {}", std::io::Error::last_os_error())),
            0 => {}
            _ => libc::_exit(0),
        }
        if libc::setsid() == -1 {
            return Err(format!(
                "setsid failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        // A closed terminal must not stop the daemon.
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    std::env::set_current_dir("/").map_err(|e| format!("chdir / failed: {e}"))?;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("cannot open /dev/null: {e}"))?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&null);
    let targets: &[i32] = if verbose {
        &[libc::STDIN_FILENO, libc::STDOUT_FILENO]
    } else {
        &[libc::STDIN_FILENO, libc::STDOUT_FILENO, libc::STDERR_FILENO]
    };
    for &target in targets {
        // SAFETY: dup2 between a descriptor we hold open and a standard one.
        if unsafe { libc::dup2(fd, target) } < 0 {
            return Err(format!("dup2 failed: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Whether `folder` is on tmpfs or hugetlbfs (where `-e` files belong).
pub fn is_memory_filesystem(folder: &Path) -> bool {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    const HUGETLBFS_MAGIC: i64 = 0x9584_58f6;
    let Ok(path) = CString::new(folder.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs reads the NUL-terminated path and writes one statfs
    // into the zeroed struct we own.
    let fs_type = unsafe {
        let mut stat: libc::statfs = std::mem::zeroed();
        if libc::statfs(path.as_ptr(), &mut stat) != 0 {
            return false;
        }
        stat.f_type as i64
    };
    fs_type == TMPFS_MAGIC || fs_type == HUGETLBFS_MAGIC
}

/// `-k`: lock every page, present and future, in memory. Like memcached, a
/// refusal (usually the locked-memory limit) is a warning, not an error.
pub fn lock_all_memory() {
    // SAFETY: mlockall takes flags only.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
        log::warn!(
            "-k: mlockall failed ({}); running without locked memory",
            std::io::Error::last_os_error()
        );
    }
}

/// The pid file (`-P`): written once the server listens, removed when this
/// value drops at exit.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes this process's id to `path` (through a temporary file and a
    /// rename, so a reader never sees it half written).
    pub fn write(path: &Path) -> Result<PidFile, String> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        std::fs::write(&tmp, format!("{}\n", std::process::id()))
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| format!("could not write the pid file {}: {e}", path.display()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Exit status of a server whose core failed (sysexits' EX_SOFTWARE).
pub const CORE_FAILED: i32 = 70;

/// A panic anywhere — in practice on a core's thread — ends the whole
/// process at once with one clear line and [`CORE_FAILED`] (or a core dump
/// under `-r`). A core that died while the others went on would leave its
/// listener accepting connections nobody serves and its keys unreachable,
/// and a supervisor would see a live process; memcached's threads take the
/// process down when one crashes, and so does this.
pub fn exit_on_panic(core_dumps: bool) {
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let name = match segcore_engine::runtime::current_core() {
            Some(core) => format!("core {core}"),
            None => format!("thread {}", thread.name().unwrap_or("?")),
        };
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("panic");
        let at = info
            .location()
            .map_or(String::new(), |l| format!(" at {}:{}", l.file(), l.line()));
        // stderr is unbuffered: the line is out before the process ends.
        eprintln!(
            "segcore: {name} failed: {what}{at}; stopping the server (exit status \
             {CORE_FAILED}) so that its supervisor restarts it"
        );
        if core_dumps {
            std::process::abort();
        }
        // SAFETY: _exit(2) ends the process at once; nothing of ours runs
        // after it, so no state a failed core left half-changed is used.
        unsafe { libc::_exit(CORE_FAILED) }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_file_holds_the_pid_until_dropped() {
        let dir = std::env::temp_dir().join(format!("segcore-pid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("segcore.pid");
        let pidfile = PidFile::write(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        assert!(!dir.join("segcore.pid.tmp").exists());
        drop(pidfile);
        assert!(!path.exists());
        std::fs::remove_dir(&dir).unwrap();
        assert!(PidFile::write(Path::new("/nonexistent-dir/x.pid")).is_err());
    }

    #[test]
    fn dropping_privileges_needs_a_real_user() {
        if is_root() {
            assert!(drop_privileges("no-such-user-segcore").is_err());
        } else {
            // Not root: -u is ignored, as in memcached.
            assert!(drop_privileges("no-such-user-segcore").is_ok());
        }
    }
}
