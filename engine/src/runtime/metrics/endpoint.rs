//! `--metrics-listen`: a minimal HTTP/1.x listener on core 0 that answers
//! `GET /metrics` with the Prometheus exposition and anything else with 404.
//!
//! It cannot hold the core or grow memory: at most [`MAX_SCRAPES`]
//! connections at once (more are closed unanswered), a request head of at
//! most [`MAX_HEAD`] bytes (a larger one gets 431), a read and write timeout
//! of [`TIMEOUT`] each (a client that sends nothing is closed), one request
//! per connection, and the work runs in a low-priority task queue so client
//! requests on core 0 go first.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::Shares;

use super::{gather, prometheus, table, Kind, Rows, Value};
use crate::runtime::latency::Latency;
use crate::runtime::op::ReportLists;
use crate::runtime::Core;

/// Hot keys listed on /metrics (`stats hotkeys N` lists more).
pub const HOT_KEYS_EXPORTED: usize = 5;
/// Scrapes served at once; more are closed at accept.
pub const MAX_SCRAPES: usize = 16;
/// Largest request head (request line and headers) read.
pub const MAX_HEAD: usize = 8 << 10;
/// How long a scrape may take to send its request or read the reply.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics` (any query string).
    Metrics,
    /// Anything else that parses as a request line.
    NotFound,
    /// Not HTTP.
    BadRequest,
}

/// Routes a request head by its request line.
pub fn route(head: &[u8]) -> Route {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with(b"HTTP/1.") || parts.next().is_some() {
        return Route::BadRequest;
    }
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    if method == b"GET" && path == b"/metrics" {
        Route::Metrics
    } else {
        Route::NotFound
    }
}

/// The whole exposition: the server-wide rows, each core's rows and
/// `memcached_up`.
pub async fn exposition(core: &Core) -> String {
    let also = ReportLists {
        latency: true,
        hot_keys: true,
        classes: true,
        ..ReportLists::default()
    };
    let reports = gather::reports(core, also).await;
    let totals = super::Totals::of(&reports);
    let mut rows = Rows::default();
    rows.add(
        None,
        Kind::Gauge,
        "Whether the server answered (always 1 when it answers).",
        Value::Int(1),
    )
    .prom("memcached_up");
    rows.0
        .extend(table::general(&totals, &core.settings, crate::runtime::unix_now()).0);
    for report in &reports {
        rows.0.extend(table::core(report).0);
        rows.0.extend(table::segments(report).0);
    }
    rows.0.extend(super::classes::prometheus_rows(&reports).0);
    let per_core: Vec<_> = reports.iter().map(|r| (r.core, &r.hot_keys[..])).collect();
    for (core, key, count) in crate::runtime::hotkeys::ranking(&per_core, HOT_KEYS_EXPORTED) {
        rows.add(
            None,
            Kind::Gauge,
            "Estimated requests for the most requested keys (sampled).",
            Value::Int(count),
        )
        .prom("segcore_hot_key_requests")
        .label("key", String::from_utf8_lossy(key))
        .label("core", core.to_string());
    }
    let mut out = String::with_capacity(32 << 10);
    prometheus::write(&mut out, &rows.0);
    let mut latency = Latency::default();
    for report in reports.iter().filter_map(|r| r.latency.as_deref()) {
        latency.merge(report);
    }
    crate::runtime::latency::write_prometheus(&mut out, &latency);
    out
}

/// Serves scrapes on `listener` until the core stops.
pub fn spawn(core: &Rc<Core>, listener: TcpListener) {
    let core = core.clone();
    let queue = glommio::executor().create_task_queue(
        Shares::Static(10),
        glommio::Latency::NotImportant,
        "metrics",
    );
    let _ = glommio::spawn_local_into(
        async move {
            let active = Rc::new(Cell::new(0usize));
            let stop = core.stop.clone();
            loop {
                match crate::runtime::core_main::accept_or_stop(&listener, &stop).await {
                    Some(Ok(stream)) if active.get() < MAX_SCRAPES => {
                        active.set(active.get() + 1);
                        let (core, active) = (core.clone(), active.clone());
                        glommio::spawn_local(async move {
                            let _ = serve(&core, stream).await;
                            active.set(active.get() - 1);
                        })
                        .detach();
                    }
                    Some(Ok(stream)) => drop(stream),
                    Some(Err(_)) => glommio::timer::sleep(Duration::from_millis(10)).await,
                    None => break,
                }
            }
        },
        queue,
    )
    .map(|task| task.detach());
}

/// Reads one request head and answers it.
async fn serve(core: &Core, mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut head = vec![0u8; MAX_HEAD];
    let mut len = 0;
    let complete = loop {
        if len == head.len() {
            break false;
        }
        let n = stream.read(&mut head[len..]).await?;
        if n == 0 {
            return Ok(()); // gone before finishing its request
        }
        len += n;
        let read = &head[..len];
        if read.windows(4).any(|w| w == b"\r\n\r\n") || read.windows(2).any(|w| w == b"\n\n") {
            break true;
        }
    };
    let (status, content_type, body) = if !complete {
        (
            "431 Request Header Fields Too Large",
            "text/plain",
            String::new(),
        )
    } else {
        match route(&head[..len]) {
            Route::Metrics => ("200 OK", prometheus::CONTENT_TYPE, exposition(core).await),
            Route::NotFound => ("404 Not Found", "text/plain", "not found\n".into()),
            Route::BadRequest => ("400 Bad Request", "text/plain", String::new()),
        }
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.close().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_is_routed_to_the_exposition() {
        let cases: &[(&[u8], Route)] = &[
            (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", Route::Metrics),
            (b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", Route::Metrics),
            (b"GET /metrics HTTP/1.1\n\n", Route::Metrics),
            (b"POST /metrics HTTP/1.1\r\n\r\n", Route::NotFound),
            (b"GET / HTTP/1.1\r\n\r\n", Route::NotFound),
            (b"GET /metricsx HTTP/1.1\r\n\r\n", Route::NotFound),
            (b"get /metrics HTTP/1.1\r\n\r\n", Route::NotFound),
            (b"GET /metrics\r\n\r\n", Route::BadRequest),
            (b"GET /metrics SPDY/3\r\n\r\n", Route::BadRequest),
            (b"stats\r\n", Route::BadRequest),
            (b"", Route::BadRequest),
        ];
        for (head, expected) in cases {
            assert_eq!(
                route(head),
                *expected,
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }
}
