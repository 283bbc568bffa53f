//! `--metrics-listen`: a minimal HTTP/1.x listener on core 0 that answers
//! `GET /metrics` with the Prometheus exposition and anything else with 404.
//!
//! It cannot hold the core or grow memory: at most [`MAX_SCRAPES`]
//! connections at once, a request head of at most [`MAX_HEAD`] bytes (a
//! larger one gets 431) that must arrive within [`HEAD_DEADLINE`] in all,
//! a write timeout of [`TIMEOUT`], one request per connection, and the work
//! runs in a low-priority task queue so client requests on core 0 go first.
//! Slow clients cannot hold every slot: when all are taken, a new scrape
//! takes the slot of the oldest connection still sending its head.
//!
//! It respects the server's access control: with `-S` or `-Y` every scrape
//! must carry HTTP Basic credentials of a user in the same password file
//! (Prometheus' `basic_auth`), or it gets 401 and nothing — no counters and
//! no key names. Failed attempts count in `auth_errors` and are answered
//! after a pause, so the endpoint is no faster a way to guess passwords.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::Shares;

use crate::runtime::metrics::latency::Latency;
use crate::runtime::metrics::rows::{Kind, Rows, Value};
use crate::runtime::metrics::{gather, prometheus, table};
use crate::runtime::op::ReportLists;
use crate::runtime::server::core::Core;
use crate::runtime::server::signal::Signal;

/// Hot keys listed on /metrics (`stats hotkeys N` lists more).
pub const HOT_KEYS_EXPORTED: usize = 5;
/// Scrapes served at once; more are closed at accept.
pub const MAX_SCRAPES: usize = 16;
/// Largest request head (request line and headers) read.
pub const MAX_HEAD: usize = 8 << 10;
/// How long a scrape may take to read the reply.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a scrape may take to send its whole request head.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(2);
/// How long a scrape with wrong credentials waits for its 401.
pub const AUTH_FAILURE_PAUSE: Duration = Duration::from_millis(200);

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
    let totals = crate::runtime::metrics::report::Totals::of(&reports);
    let mut rows = Rows::default();
    rows.add(
        None,
        Kind::Gauge,
        "Whether the server answered (always 1 when it answers).",
        Value::Int(1),
    )
    .prom("memcached_up");
    rows.0
        .extend(table::general(&totals, &core.settings, crate::storage::time::unix_now()).0);
    for report in &reports {
        rows.0.extend(table::core(report).0);
        rows.0.extend(table::segments(report).0);
    }
    rows.0
        .extend(crate::runtime::metrics::classes::prometheus_rows(&reports).0);
    let per_core: Vec<_> = reports.iter().map(|r| (r.core, &r.hot_keys[..])).collect();
    for (core, key, count) in
        crate::runtime::metrics::hotkeys::ranking(&per_core, HOT_KEYS_EXPORTED)
    {
        rows.add(
            None,
            Kind::Gauge,
            "Estimated requests for the most requested keys (sampled).",
            Value::Int(count),
        )
        .prom("segcore_hot_key_requests")
        .label("key", segcore_protocol::key::Printable(key).to_string())
        .label("core", core.to_string());
    }
    let mut out = String::with_capacity(32 << 10);
    prometheus::write(&mut out, &rows.0);
    let mut latency = Latency::default();
    for report in reports.iter().filter_map(|r| r.latency.as_deref()) {
        latency.merge(report);
    }
    crate::runtime::metrics::latency::write_prometheus(&mut out, &latency);
    out
}

/// The scrapes being served, in the order they came: each with whether it
/// is still sending its head and the signal that ends it early.
#[derive(Default)]
struct Scrapes {
    open: Vec<(u64, bool, Signal)>,
    next: u64,
}

impl Scrapes {
    /// Makes room for one more: `false` when every slot serves a reply.
    fn admit(&mut self) -> Option<(u64, Signal)> {
        if self.open.len() >= MAX_SCRAPES {
            // The oldest one still sending its head gives its slot up.
            let at = self.open.iter().position(|(_, in_head, _)| *in_head)?;
            let (_, _, evicted) = self.open.remove(at);
            evicted.fire();
        }
        self.next += 1;
        let signal = Signal::default();
        self.open.push((self.next, true, signal.clone()));
        Some((self.next, signal))
    }

    fn head_done(&mut self, id: u64) {
        if let Some(entry) = self.open.iter_mut().find(|(i, ..)| *i == id) {
            entry.1 = false;
        }
    }

    fn done(&mut self, id: u64) {
        self.open.retain(|(i, ..)| *i != id);
    }
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
            let scrapes = Rc::new(RefCell::new(Scrapes::default()));
            let stop = core.stop.clone();
            loop {
                match crate::runtime::conn::listen::accept_or_stop(&listener, &stop).await {
                    Some(Ok(stream)) => {
                        let Some((id, evicted)) = scrapes.borrow_mut().admit() else {
                            continue; // every slot is sending a reply
                        };
                        let (core, scrapes) = (core.clone(), scrapes.clone());
                        glommio::spawn_local(async move {
                            let served = futures_lite::future::or(
                                serve(&core, stream, || scrapes.borrow_mut().head_done(id)),
                                async {
                                    evicted.wait().await;
                                    Ok(())
                                },
                            );
                            let _ = served.await;
                            scrapes.borrow_mut().done(id);
                        })
                        .detach();
                    }
                    Some(Err(_)) => glommio::timer::sleep(Duration::from_millis(10)).await,
                    None => break,
                }
            }
        },
        queue,
    )
    .map(|task| task.detach());
}

/// Reads a request head, within [`HEAD_DEADLINE`] and [`MAX_HEAD`]:
/// `Some(length)` when complete, `None` when too long; an error when the
/// client left or ran out of time.
async fn read_head(stream: &mut TcpStream, head: &mut [u8]) -> std::io::Result<Option<usize>> {
    let reading = async {
        let mut len = 0;
        loop {
            if len == head.len() {
                return Ok(None);
            }
            let n = stream.read(&mut head[len..]).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            len += n;
            let read = &head[..len];
            if read.windows(4).any(|w| w == b"\r\n\r\n") || read.windows(2).any(|w| w == b"\n\n") {
                return Ok(Some(len));
            }
        }
    };
    futures_lite::future::or(reading, async {
        glommio::timer::sleep(HEAD_DEADLINE).await;
        Err(std::io::ErrorKind::TimedOut.into())
    })
    .await
}

/// Whether the head carries credentials the server accepts (always, when
/// it requires none); counts attempts as the client protocols do.
fn authorized(core: &Core, head: &[u8]) -> bool {
    let Some(config) = core.settings.auth.as_ref() else {
        return true;
    };
    let mut buf = [0u8; 1024];
    let ok = segcore_protocol::auth::http_basic(head, &mut buf).is_some_and(|c| config.check(c));
    crate::runtime::wire::gate::count(&core.counters, ok);
    ok
}

/// Reads one request head and answers it; `head_read` is called once the
/// head is in.
async fn serve(
    core: &Core,
    mut stream: TcpStream,
    head_read: impl FnOnce(),
) -> std::io::Result<()> {
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut head = vec![0u8; MAX_HEAD];
    let complete = read_head(&mut stream, &mut head).await?;
    head_read();
    let (status, content_type, body) = match complete {
        None => (
            "431 Request Header Fields Too Large",
            "text/plain",
            String::new(),
        ),
        Some(len) => match route(&head[..len]) {
            Route::Metrics if !authorized(core, &head[..len]) => {
                glommio::timer::sleep(AUTH_FAILURE_PAUSE).await;
                ("401 Unauthorized", "text/plain", "unauthorized\n".into())
            }
            Route::Metrics => ("200 OK", prometheus::CONTENT_TYPE, exposition(core).await),
            Route::NotFound => ("404 Not Found", "text/plain", "not found\n".into()),
            Route::BadRequest => ("400 Bad Request", "text/plain", String::new()),
        },
    };
    let challenge = if status.starts_with("401") {
        "WWW-Authenticate: Basic realm=\"segcore\"\r\n"
    } else {
        ""
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{challenge}Connection: close\r\n\r\n{body}",
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
