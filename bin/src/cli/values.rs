//! The flags that are checked or combined on their own before the settings
//! are built: options that cannot be honoured, ones that are ignored, `-D`,
//! `-I` with the segment size, the CPUs, and `-o`.

use super::cpus::{allowed_cpus, threads_on, usable_cpus};
use super::{size, tls, Args};
use segcore_engine::runtime::DEFAULT_DELIMITER;

/// Serving without a protection the command line asked for would be worse
/// than not starting.
pub fn refuse_unhonourable(args: &Args) -> Result<(), String> {
    for (flag, used, why) in [
        (
            "-s",
            args.unix_socket.is_some(),
            "unix sockets are not served (TCP only)",
        ),
        (
            "-M",
            args.disable_evictions,
            "segcore always evicts when memory is full (no out-of-memory mode)",
        ),
    ] {
        if used {
            return Err(format!("memcached option {flag} cannot be honoured: {why}"));
        }
    }
    Ok(())
}

/// memcached's options that mean nothing here: accepted, with a warning.
pub fn warn_ignored(args: &Args) {
    for (flag, used) in [
        ("-U", args.udp_port.is_some_and(|p| p != 0)),
        ("-f", args.factor.is_some()),
        ("-n", args.min_space.is_some()),
        ("-b", args.backlog.is_some()),
        ("-R", args.requests_per_event.is_some()),
        ("-B", args.binding.is_some()),
        ("-L", args.large_pages),
        ("-C", args.disable_cas),
        ("-a", args.unix_mask.is_some()),
        ("-X", args.disable_dumping),
        ("-N", args.napi_ids.is_some()),
    ] {
        if used {
            log::warn!("memcached option {flag} does not apply to segcore and is ignored");
        }
    }
}

/// `-D`: one printable character.
pub fn prefix_delimiter(args: &Args) -> Result<u8, String> {
    match args.prefix_delimiter.as_deref() {
        None => Ok(DEFAULT_DELIMITER),
        Some(text) => match text.as_bytes() {
            [byte] if byte.is_ascii_graphic() => Ok(*byte),
            _ => Err(format!(
                "-D {text:?}: the delimiter must be one printable character"
            )),
        },
    }
}

/// `-I` (at least 1024, as memcached; at most 16m) and the segment size,
/// grown to hold the largest item: as in memcached, -I bounds the whole
/// item (header, key and value), and an item lives in one segment.
pub fn item_and_segment_size(args: &Args) -> Result<(usize, usize), String> {
    let max_item_size = size(&args.max_item_size)?;
    if max_item_size < 1024 {
        return Err(format!(
            "-I {}: the item size limit must be at least 1024 bytes",
            args.max_item_size
        ));
    }
    let mut segment_size = size(&args.segment_size)?;
    if !segment_size.is_power_of_two() {
        return Err(format!(
            "--segment-size {} must be a power of two",
            args.segment_size
        ));
    }
    if max_item_size > 16 << 20 {
        return Err(format!(
            "-I {} is too large: the largest item segcore supports is 16m",
            args.max_item_size
        ));
    }
    while segment_size < max_item_size {
        segment_size *= 2;
    }
    Ok((max_item_size, segment_size))
}

/// The CPUs to run on (`--cores`, `-t`, or every allowed one). memcached
/// runs any thread count in a few megabytes; here each core needs whole
/// segments of its own, so a budget that holds `fit` cores' segments runs
/// on that many rather than not at all.
pub fn cpus_for(args: &Args, fit: usize) -> Result<Vec<usize>, String> {
    let mut cpus = match (&args.cores, args.threads) {
        (Some(list), _) => usable_cpus(list, &allowed_cpus())?,
        (None, Some(0)) => return Err("-t must be at least 1".into()),
        (None, Some(n)) => threads_on(n, &allowed_cpus()),
        (None, None) => allowed_cpus(),
    };
    if fit >= 1 && fit < cpus.len() {
        log::warn!(
            "-m {} holds the segments of {fit} core(s), not {}: running on {fit}",
            args.memory_limit,
            cpus.len()
        );
        cpus.truncate(fit);
    }
    Ok(cpus)
}

/// `-o` options: TLS ones, `idle_timeout`; the rest warned about.
pub fn extended_options(args: &Args) -> Result<(Option<u32>, tls::SslArgs), String> {
    let mut idle_timeout = args.idle_timeout;
    let mut ssl = tls::SslArgs::default();
    for option in args.extended.iter().flat_map(|o| o.split(',')) {
        let (name, value) = option.split_once('=').unwrap_or((option, ""));
        if ssl.take(name.trim(), value)? {
            continue;
        }
        match name.trim() {
            "" => {}
            "idle_timeout" => {
                let seconds = value.trim().parse::<u32>().map_err(|_| {
                    format!("-o idle_timeout={value}: expected a number of seconds")
                })?;
                idle_timeout = idle_timeout.or(Some(seconds));
            }
            other => log::warn!(
                "memcached option -o {other} does not apply to segcore and is \
                 ignored"
            ),
        }
    }
    Ok((idle_timeout, ssl))
}
