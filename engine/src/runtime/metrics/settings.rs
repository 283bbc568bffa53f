//! `stats settings` as rows: each memcached setting's name and how to show
//! it, in memcached's order, then segcore's own. A new setting is one row.

use crate::runtime::conn::buffers::{BUFFER_SIZE, HEADER_ROOM, MAX_IDLE_BUFFERS};
use crate::runtime::conn::tls::{MinVersion, TlsOptions};
use crate::runtime::metrics::report::CoreReport;
use crate::runtime::server::auth::AuthMode;
use crate::runtime::server::numa;
use crate::runtime::server::settings::Settings;

/// A setting: its `stats settings` name and its value as shown.
type Setting = (&'static str, fn(&Settings, &[CoreReport]) -> String);

fn yes_no(on: bool) -> String {
    if on { "yes" } else { "no" }.to_string()
}

fn auth_mode(s: &Settings) -> Option<AuthMode> {
    s.auth.as_ref().map(|a| a.mode)
}

/// The settings before the TLS ones.
static GENERAL: &[Setting] = &[
    ("maxbytes", |s, _| s.memory_bytes.to_string()),
    ("maxconns", |s, _| s.conn_limit.to_string()),
    ("tcpport", |s, _| s.listen.port().to_string()),
    ("udpport", |_, _| "0".into()),
    ("inter", |s, _| s.listen.ip().to_string()),
    ("verbosity", |_, _| {
        crate::runtime::server::verbosity::verbosity().to_string()
    }),
    ("evictions", |_, _| "on".into()),
    ("domain_socket", |_, _| "NULL".into()),
    ("num_threads", |s, _| s.cpus.len().to_string()),
    ("stat_key_prefix", |s, _| {
        char::from(s.prefix_delimiter).to_string()
    }),
    ("detail_enabled", |_, r| {
        yes_no(r.iter().any(|r| r.detail_enabled))
    }),
    ("cas_enabled", |_, _| "yes".into()),
    ("item_size_max", |s, _| s.max_item_size.to_string()),
    ("binding_protocol", |_, _| "auto-negotiate".into()),
    ("auth_enabled_sasl", |s, _| {
        yes_no(auth_mode(s) == Some(AuthMode::Sasl))
    }),
    ("auth_enabled_ascii", |s, _| {
        yes_no(auth_mode(s) == Some(AuthMode::Ascii))
    }),
    ("flush_enabled", |s, _| yes_no(s.flush_enabled)),
    ("shutdown_command", |s, _| yes_no(s.enable_shutdown)),
    ("idle_timeout", |s, _| s.idle_timeout.to_string()),
    // memcached's TLS settings (-Z, -o ssl_*).
    ("ssl_enabled", |s, _| yes_no(s.tls.is_some())),
];

/// A TLS setting: its name and its value as shown.
type TlsSetting = (&'static str, fn(&TlsOptions) -> String);

/// The TLS settings, shown with -Z.
static TLS: &[TlsSetting] = &[
    ("ssl_chain_cert", |o| o.chain_cert.display().to_string()),
    ("ssl_key", |o| o.key.display().to_string()),
    ("ssl_verify_mode", |o| (o.verify_mode as u8).to_string()),
    ("ssl_ca_cert", |o| {
        o.ca_cert
            .as_ref()
            .map_or("NULL".into(), |p| p.display().to_string())
    }),
    ("ssl_min_version", |o| {
        match o.min_version {
            MinVersion::Tls12 => "tlsv1.2",
            MinVersion::Tls13 => "tlsv1.3",
        }
        .into()
    }),
];

/// The settings after the TLS ones: segcore's own.
static SEGCORE: &[Setting] = &[
    ("memory_file", |s, _| {
        s.memory_file
            .as_ref()
            .map_or("NULL".into(), |p| p.display().to_string())
    }),
    // The bound on connection buffer memory beyond -m: pooled buffers of
    // conn_buffer_size (at most conn_buffer_pool_max idle per core, one or
    // two lent per active connection) plus, per core, large_request_limit
    // bytes for values being received.
    ("read_buf_mem_limit", |s, _| {
        (s.large_request_bytes * s.cpus.len()).to_string()
    }),
    ("conn_buffer_size", |_, _| BUFFER_SIZE.to_string()),
    ("conn_buffer_pool_max", |_, _| {
        (2 * MAX_IDLE_BUFFERS).to_string()
    }),
    ("large_request_limit", |s, _| {
        s.large_request_bytes.to_string()
    }),
    ("large_request_timeout", |s, _| {
        s.large_request_timeout.to_string()
    }),
    // The most reply bytes one connection holds, whatever it asks for
    // (replies stream out as the client reads them).
    ("reply_buf_limit", |s, _| {
        crate::runtime::batch::bounds::reply_memory_bound(
            s.cpus.len(),
            s.max_item_size + HEADER_ROOM,
        )
        .to_string()
    }),
    // segcore's key routing: one port hashed over the cores, or a port per
    // core whose core owns whatever arrives there.
    ("routing", |s, _| {
        if s.port_per_core {
            "port_per_core"
        } else {
            "hash"
        }
        .into()
    }),
    ("segment_size", |s, _| s.segment_size.to_string()),
    ("eviction_policy", |s, _| s.eviction.name().into()),
    ("cpus", |s, _| format!("{:?}", s.cpus)),
];

/// The `stats settings` lines.
pub fn lines(settings: &Settings, reports: &[CoreReport]) -> Vec<(String, String)> {
    let show = |table: &[Setting]| {
        table
            .iter()
            .map(|(name, value)| (name.to_string(), value(settings, reports)))
            .collect::<Vec<_>>()
    };
    let mut lines = show(GENERAL);
    if let Some(tls) = &settings.tls {
        let o = tls.options();
        lines.extend(TLS.iter().map(|(name, value)| (name.to_string(), value(o))));
    }
    lines.extend(show(SEGCORE));
    // Each core's CPU, that CPU's NUMA node, and the node holding its
    // shard's memory (-1 where the kernel does not say).
    for r in reports {
        let (c, p) = (r.core, r.placement);
        lines.push((format!("core:{c}:cpu"), numa::shown(p.cpu)));
        lines.push((format!("core:{c}:numa_node"), numa::shown(p.cpu_node)));
        lines.push((format!("core:{c}:memory_node"), numa::shown(p.memory_node)));
    }
    lines
}
