//! The command line. memcached's flags keep memcached's meanings (`-p`,
//! `-l`, `-m`, `-c`, `-t`, `-I`, `-v`, `-A`, `-u`, `-d`, `-P`, `-F`, `-D`,
//! `-k`, `-r`); segcore's own are long-only. memcached flags that do not
//! apply are accepted and ignored with a warning, so existing init scripts
//! keep working; those asking for a guarantee segcore cannot give (a unix
//! socket, no evictions) stop it with an error instead.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use segcore_engine::runtime::auth::{AuthConfig, AuthMode, PasswordFile};
use segcore_engine::runtime::{unix_now, Settings};

use crate::process::ProcessOptions;
use segcore_engine::storage::Policy;
use values::{
    cpus_for, extended_options, item_and_segment_size, prefix_delimiter, refuse_unhonourable,
    warn_ignored,
};

/// segcore: a memcached-compatible cache server, one pinned thread per core.
///
/// Speaks memcached's text, meta and binary protocols on one port. Defaults
/// match memcached's (port 11211, 64 MB, 1024 connections, 1 MB items),
/// except that it listens on 127.0.0.1 unless told otherwise with -l.
#[derive(Parser, Debug)]
#[command(name = "segcore", version, about, long_about = None)]
struct Args {
    /// TCP port to listen on.
    #[arg(short = 'p', long = "port", default_value_t = 11211)]
    port: u16,

    /// Per-core endpoints: core i listens on BASE+i and serves every key
    /// that arrives there from its own shard, without forwarding (replaces
    /// -p). Point a proxy's or client's consistent-hash ring at the ports.
    #[arg(long = "port-per-core", value_name = "BASE")]
    port_per_core: Option<u16>,

    /// Interface to listen on, as IP[:PORT]. Loopback by default: safe
    /// until you choose to expose it (e.g. -l 0.0.0.0). Comma-separated or
    /// repeated, with notls:IP:PORT entries for plaintext listeners beside
    /// a TLS one (-Z), as memcached.
    #[arg(short = 'l', long = "listen", default_value = "127.0.0.1")]
    listen: Vec<String>,

    /// Item memory in megabytes, for the whole server (split evenly among
    /// cores).
    #[arg(short = 'm', long = "memory-limit", default_value_t = 64)]
    memory_limit: usize,

    /// Maximum simultaneous connections, for the whole server. A connection
    /// over it gets "ERROR Too many open connections" and is closed.
    #[arg(short = 'c', long = "conn-limit", default_value_t = 1024)]
    conn_limit: usize,

    /// Close connections that send no command for this many seconds
    /// (memcached's -o idle_timeout=N); 0 never closes them.
    #[arg(long = "idle-timeout", value_name = "SECONDS")]
    idle_timeout: Option<u32>,

    /// Number of cores (one pinned executor each). Default: every CPU this
    /// process may run on.
    #[arg(short = 't', long = "threads")]
    threads: Option<usize>,

    /// Exact CPUs to run on, e.g. "0,2,4" or "0-3" (overrides -t).
    #[arg(long = "cores")]
    cores: Option<String>,

    /// Largest item (value, key and a few bytes of header, as memcached
    /// counts it), with k/m suffixes (e.g. 512k, 4m). Raising it above the
    /// segment size raises the segment size too (max 16m).
    #[arg(short = 'I', long = "max-item-size", default_value = "1m")]
    max_item_size: String,

    /// Verbose logging to stderr (repeat for more).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,

    /// Memory each core may use beyond its pooled connection buffers to
    /// receive large values (k/m suffixes; default: two of the largest
    /// items, at least 16m). Past it, a new large value is refused with
    /// "SERVER_ERROR out of memory storing object" instead of growing the
    /// server: slow senders of big values cannot push memory past -m.
    #[arg(long = "large-request-memory", value_name = "SIZE")]
    large_request_memory: Option<String>,

    /// A connection part-way through a large value that sends nothing for
    /// this many seconds gives its share of --large-request-memory back
    /// (it is closed) when another connection needs room; 0 never.
    #[arg(
        long = "large-request-timeout",
        value_name = "SECONDS",
        default_value_t = 2
    )]
    large_request_timeout: u32,

    /// Keep item memory in files PATH.0, PATH.1, ... (one per core) so the
    /// cache survives a restart (memcached's -e): put them on tmpfs
    /// (/dev/shm), stop with SIGUSR1, start again with the same settings.
    #[arg(short = 'e', long = "memory-file", value_name = "PATH")]
    memory_file: Option<PathBuf>,

    /// Bytes per storage segment, a power of two with k/m suffixes.
    #[arg(long = "segment-size", default_value = "1m")]
    segment_size: String,

    /// Eviction policy when memory is full.
    #[arg(long = "eviction", default_value = Policy::DEFAULT.name(), value_parser = clap::builder::PossibleValuesParser::new(Policy::ALL.map(Policy::name)))]
    eviction: String,

    /// Honour the `shutdown` command (memcached's -A).
    #[arg(short = 'A', long = "enable-shutdown")]
    enable_shutdown: bool,

    /// Refuse flush_all, so no client can empty the cache.
    #[arg(short = 'F', long = "disable-flush-all")]
    disable_flush_all: bool,

    /// Key prefix delimiter for `stats detail`; giving it also turns the
    /// per-prefix counts on from the start.
    #[arg(short = 'D', value_name = "CHAR")]
    prefix_delimiter: Option<String>,

    /// When started as root, switch to this user.
    #[arg(short = 'u', long = "user")]
    user: Option<String>,

    /// Run in the background.
    #[arg(short = 'd', long = "daemon")]
    daemon: bool,

    /// Write the process id to this file (removed on exit).
    #[arg(short = 'P', long = "pidfile")]
    pidfile: Option<PathBuf>,

    /// Lock all memory in RAM.
    #[arg(short = 'k', long = "lock-memory")]
    lock_memory: bool,

    /// Raise the core file size limit.
    #[arg(short = 'r', long = "enable-coredumps")]
    core_dumps: bool,

    /// Microseconds an idle core keeps polling before it sleeps: higher
    /// means lower cross-core latency and more idle CPU.
    #[arg(long = "spin-us", default_value_t = 100)]
    spin_us: u64,

    /// memcached's UDP port: segcore serves TCP only (ignored unless 0).
    #[arg(short = 'U', long = "udp-port", hide = true)]
    udp_port: Option<u16>,

    /// Serve Prometheus metrics at http://ADDR/metrics (memcached_exporter's
    /// names, plus segcore_* per-core ones). ADDR is IP:PORT, or a bare
    /// PORT on 127.0.0.1. Off by default.
    #[arg(long = "metrics-listen", value_name = "ADDR")]
    metrics_listen: Option<String>,

    /// memcached's extended options, comma-separated: idle_timeout=N and
    /// the ssl_* options are honoured, the others are ignored with a
    /// warning.
    #[arg(short = 'o', long = "extended", value_name = "OPTIONS")]
    extended: Vec<String>,

    /// memcached's slab growth factor: no slabs here, ignored.
    #[arg(short = 'f', long = "slab-growth-factor", hide = true)]
    factor: Option<f64>,

    /// memcached's minimum item space: ignored.
    #[arg(short = 'n', long = "slab-min-size", hide = true)]
    min_space: Option<usize>,

    /// memcached's listen backlog: ignored.
    #[arg(short = 'b', long = "listen-backlog", hide = true)]
    backlog: Option<usize>,

    /// memcached's requests per event: ignored.
    #[arg(short = 'R', long = "max-reqs-per-event", hide = true)]
    requests_per_event: Option<usize>,

    /// memcached's binding protocol: segcore always auto-detects.
    #[arg(short = 'B', long = "protocol", hide = true)]
    binding: Option<String>,

    /// memcached's large memory pages: segcore asks for them anyway.
    #[arg(short = 'L', long = "enable-largepages", hide = true)]
    large_pages: bool,

    /// memcached's switch to turn cas off: segcore always keeps cas.
    #[arg(short = 'C', long = "disable-cas", hide = true)]
    disable_cas: bool,

    /// memcached's unix socket mask: only meaningful with -s.
    #[arg(short = 'a', long = "unix-mask", hide = true)]
    unix_mask: Option<String>,

    /// memcached's unix socket: not served (refused).
    #[arg(short = 's', long = "unix-socket", hide = true)]
    unix_socket: Option<String>,

    /// memcached's switch to turn off `lru_crawler metadump`: ignored.
    #[arg(short = 'X', long = "disable-dumping", hide = true)]
    disable_dumping: bool,

    /// memcached's NAPI ids for receive queues: ignored.
    #[arg(short = 'N', long = "napi_ids", hide = true)]
    napi_ids: Option<String>,

    /// Prints the license and exits, as memcached -i does.
    #[arg(short = 'i', long = "license")]
    license: bool,

    /// Writes the man page (roff) to stdout and exits (packaging).
    #[arg(long = "generate-man", hide = true)]
    generate_man: bool,

    /// Writes shell completions (bash, zsh, fish, ...) to stdout and exits
    /// (packaging).
    #[arg(long = "generate-completions", value_name = "SHELL", hide = true)]
    generate_completions: Option<clap_complete::Shell>,

    /// memcached's "no evictions, errors instead": not offered (refused).
    #[arg(short = 'M', long = "disable-evictions", hide = true)]
    disable_evictions: bool,

    /// Require SASL PLAIN authentication of binary clients, checked
    /// against the user:password file MEMCACHED_SASL_PWDB names; text
    /// clients are refused (memcached's -S).
    #[arg(short = 'S', long = "enable-sasl")]
    sasl: bool,

    /// Require memcached's ASCII authentication of text clients: a
    /// `set <key> <flags> <exptime> <bytes>` whose data is `user password`
    /// from this user:password file; binary clients are refused.
    #[arg(short = 'Y', long = "auth-file", value_name = "FILE")]
    auth_file: Option<String>,

    /// Serve TLS on the listeners (memcached's -Z), with -o
    /// ssl_chain_cert=<file>,ssl_key=<file> and optionally ssl_ca_cert,
    /// ssl_verify_mode=<0..3>, ssl_min_version=<tlsv1.2|tlsv1.3>.
    #[arg(short = 'Z', long = "enable-ssl")]
    tls: bool,

    /// Seconds a client has to finish its TLS handshake before it is closed.
    #[arg(
        long = "tls-handshake-timeout",
        value_name = "SECONDS",
        default_value_t = 10
    )]
    tls_handshake_timeout: u64,
}

fn size(text: &str) -> Result<usize, String> {
    let t = text.trim().to_ascii_lowercase();
    let (digits, unit) = match t.as_bytes().last() {
        Some(b'k') => (&t[..t.len() - 1], 1 << 10),
        Some(b'm') => (&t[..t.len() - 1], 1 << 20),
        Some(b'g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t.as_str(), 1),
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("invalid size {text:?} (expected e.g. 512k or 1m)"))
}

/// `-e PATH`: its folder must exist; a folder not on tmpfs or hugetlbfs
/// works but writes the cache to disk, so say so.
fn check_memory_file(path: PathBuf) -> Result<PathBuf, String> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !folder.is_dir() {
        return Err(format!(
            "-e {}: the folder {} does not exist",
            path.display(),
            folder.display()
        ));
    }
    if !crate::process::is_memory_filesystem(&folder) {
        log::warn!(
            "-e {}: {} is not on tmpfs or hugetlbfs; the cache will be written \
             to disk as it changes (use /dev/shm or a tmpfs mount)",
            path.display(),
            folder.display()
        );
    }
    Ok(path)
}

fn settings(args: Args) -> Result<(Settings, ProcessOptions), String> {
    refuse_unhonourable(&args)?;
    warn_ignored(&args);
    let prefix_delimiter = prefix_delimiter(&args)?;
    let listen = listen::parse(&args.listen, args.port_per_core.unwrap_or(args.port))?;
    if args.port_per_core.is_some() && !listen.more.is_empty() {
        return Err(
            "--port-per-core listens on one address (each core on its own port of it); \
             -l names more than one"
                .into(),
        );
    }
    if args.port_per_core.is_some() && !listen.plain.is_empty() {
        return Err("--port-per-core and -l notls: cannot be combined".into());
    }
    let (max_item_size, segment_size) = item_and_segment_size(&args)?;
    let memory_bytes = args
        .memory_limit
        .checked_mul(1 << 20)
        .ok_or("-m is too large")?;
    let eviction = args.eviction.parse::<Policy>()?;
    let cpus = cpus_for(
        &args,
        memory_bytes / (segment_size * eviction.min_segments()),
    )?;
    if args.conn_limit == 0 {
        return Err("-c must be at least 1".into());
    }
    let (idle_timeout, ssl) = extended_options(&args)?;
    let process = ProcessOptions {
        user: args.user,
        daemon: args.daemon,
        pidfile: args.pidfile,
        lock_memory: args.lock_memory,
        core_dumps: args.core_dumps,
    };
    let settings = Settings {
        listen: listen.main,
        plain_listen: listen.plain,
        more_listen: listen.more,
        port_per_core: args.port_per_core.is_some(),
        cpus,
        memory_bytes,
        segment_size,
        eviction,
        memory_file: args.memory_file.map(check_memory_file).transpose()?,
        max_item_size,
        conn_limit: args.conn_limit,
        idle_timeout: idle_timeout.unwrap_or(0),
        large_request_bytes: match args.large_request_memory.as_deref() {
            None => Settings::default_large_request_bytes(max_item_size),
            Some("0") => 0,
            Some(text) => size(text)?,
        },
        large_request_timeout: args.large_request_timeout,
        verbosity: args.verbose,
        enable_shutdown: args.enable_shutdown,
        flush_enabled: !args.disable_flush_all,
        prefix_delimiter,
        detail_enabled: args.prefix_delimiter.is_some(),
        version: format!("1.6.21-segcore-{}", env!("CARGO_PKG_VERSION")),
        started_at: unix_now(),
        spin_before_park: Duration::from_micros(args.spin_us),
        expire_budget: 64,
        metrics_listen: args
            .metrics_listen
            .as_deref()
            .map(metrics_addr)
            .transpose()?,
        tls: ssl.context(args.tls)?,
        tls_handshake_timeout: Duration::from_secs(args.tls_handshake_timeout),
        auth: auth_config(
            args.sasl,
            args.auth_file.as_deref(),
            std::env::var_os(SASL_PWDB_VAR),
        )?,
    };
    Ok((settings, process))
}

/// The environment variable naming the SASL password file, as memcached
/// built with its password-database option reads it.
const SASL_PWDB_VAR: &str = "MEMCACHED_SASL_PWDB";

/// The authentication `-S` or `-Y` asks for, with its users loaded: a
/// missing or unreadable file stops the server with a line naming it.
fn auth_config(
    sasl: bool,
    auth_file: Option<&str>,
    sasl_pwdb: Option<std::ffi::OsString>,
) -> Result<Option<std::sync::Arc<AuthConfig>>, String> {
    match (sasl, auth_file) {
        (true, Some(_)) => Err(
            "-S and -Y cannot be used together: SASL serves binary clients \
             only, ASCII authentication text clients only"
                .into(),
        ),
        (true, None) => {
            let Some(path) = sasl_pwdb else {
                return Err(format!(
                    "-S needs the password file: set {SASL_PWDB_VAR}=/path/to/file \
                     (lines user:password)"
                ));
            };
            let users = PasswordFile::load(Path::new(&path)).map_err(|e| format!("-S: {e}"))?;
            Ok(Some(std::sync::Arc::new(AuthConfig::new(
                AuthMode::Sasl,
                users,
                Some(PathBuf::from(path)),
            ))))
        }
        (false, Some(file)) => {
            let users = PasswordFile::load(Path::new(file)).map_err(|e| format!("-Y: {e}"))?;
            Ok(Some(std::sync::Arc::new(AuthConfig::new(
                AuthMode::Ascii,
                users,
                Some(PathBuf::from(file)),
            ))))
        }
        (false, None) => Ok(None),
    }
}

/// `--metrics-listen`'s address: `IP:PORT`, or a bare port on loopback.
fn metrics_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse::<SocketAddr>()
        .map_err(|_| format!("--metrics-listen {text}: expected IP:PORT or PORT"))
}

/// Parses the command line; on error prints it and returns the exit code.
pub fn parse() -> Result<(Settings, ProcessOptions), ExitCode> {
    let args = Args::try_parse().map_err(|e| {
        let _ = e.print();
        ExitCode::from(if e.use_stderr() { 64 } else { 0 })
    })?;
    if args.license {
        print!("{}", include_str!("../../LICENSE"));
        return Err(ExitCode::SUCCESS);
    }
    if args.generate_man || args.generate_completions.is_some() {
        return Err(generate(&args));
    }
    settings(args).map_err(|e| {
        log::error!("{e}");
        ExitCode::from(64)
    })
}

/// The man page or shell completions, from the CLI definition itself.
fn generate(args: &Args) -> ExitCode {
    let mut command = <Args as clap::CommandFactory>::command();
    let mut out = std::io::stdout();
    match args.generate_completions {
        Some(shell) => {
            clap_complete::generate(shell, &mut command, "segcore", &mut out);
            ExitCode::SUCCESS
        }
        None => match clap_mangen::Man::new(command).render(&mut out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                log::error!("cannot write the man page: {e}");
                ExitCode::from(1)
            }
        },
    }
}

mod cpus;
mod listen;
mod tls;
mod values;

#[cfg(test)]
mod tests;
