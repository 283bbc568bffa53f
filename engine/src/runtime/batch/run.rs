//! Running one read's worth of requests: pass 1, the forwarding, pass 2.

use futures_lite::AsyncWrite;
use segcore_protocol::Limits;

use crate::runtime::batch::bounds::FLUSH_BYTES;
use crate::runtime::batch::pass2::{flush, Pass2, Step};
use crate::runtime::batch::plan::{plan, Planned, Stop};
use crate::runtime::batch::remote::{refill, send_all, Remote, Remotes};
use crate::runtime::batch::router::Fanout;
use crate::runtime::server::core::Core;
use crate::runtime::wire::protocol::{BatchEnd, Flow, WireProtocol};

/// Runs every complete request at the start of `buf`, parsed with
/// `limits`, appending replies to `out`; once `out` passes [`FLUSH_BYTES`]
/// it is written to `writer`, between requests or between the ops of one
/// (a multi-get's values stream out as the client takes them), so the
/// replies a connection holds stay bounded whatever it asks for (see
/// [`reply_memory_bound`](crate::runtime::batch::bounds::reply_memory_bound)).
pub async fn run_batch<P: WireProtocol, W: AsyncWrite + Unpin>(
    core: &Core,
    buf: &[u8],
    limits: &Limits,
    out: &mut Vec<u8>,
    writer: &mut W,
) -> BatchEnd {
    let route = core.route();
    core.tick();
    // Latency: one clock read here and one when the replies are queued,
    // for the whole batch (see `latency`).
    let started = std::time::Instant::now();
    // -vvv logs every command; checked once per batch.
    let trace = log::log_enabled!(log::Level::Trace);

    let mut planned = plan::<P>(core, buf, limits);
    if let Some(fanout) = planned.fanout.as_mut() {
        planned.budget = send_all(core, fanout).await;
    }

    // Pass 2: execute local ops, take remote outcomes, encode in order.
    let mut pass = Pass2::new(core, route, limits, trace);
    let (end, budget) = (planned.end, planned.budget);
    let mut at = 0;
    let flow = loop {
        if !(at < end || matches!(planned.stop, Stop::Discard(_) | Stop::Close) && at <= end) {
            break Flow::Continue;
        }
        // The remotes' view is a temporary of this statement: held across
        // the awaits below, it would grow every batch's slot.
        let fanout = planned.fanout.as_mut();
        let step = pass.step::<P>(buf, at, end, &planned.stop, &mut Remotes::of(fanout), out);
        // The rare steps that wait in the middle of a request are boxed,
        // so they do not grow every batch's slot.
        at = match step {
            Step::Next {
                at,
                flow: Flow::Continue,
            } => at,
            Step::Next { flow, .. } => break flow,
            Step::Paused {
                pause,
                resume_at,
                used,
            } => match Box::pin(pass.resume::<P, W>(
                &buf[at..at + used],
                pause,
                resume_at,
                planned.fanout.as_mut(),
                budget,
                out,
                writer,
            ))
            .await
            {
                Flow::Continue => at + used,
                flow => break flow,
            },
            Step::Skip { at, unlink } => {
                if let (Some(owner), Some(fanout)) = (unlink, planned.fanout.as_mut()) {
                    Box::pin(take_unlink(core, fanout, owner, budget)).await;
                }
                match at {
                    Some(at) => at,
                    None => break Flow::Continue,
                }
            }
            Step::End => break Flow::Continue,
        };
        if out.len() > FLUSH_BYTES && flush(core, writer, out).await.is_err() {
            break Flow::Close;
        }
    };
    finish(core, pass, started, planned, buf.len(), flow)
}

/// Takes the (empty) outcome of a refused set's unlink that pass 1 sent to
/// `owner`, fetching the rest of its outcomes first if need be.
async fn take_unlink(core: &Core, fanout: &mut Fanout, owner: usize, budget: usize) {
    while matches!(Remotes::of(Some(fanout)).next(owner), Remote::Later) {
        refill(core, fanout, owner, budget).await;
    }
}

/// After pass 2: counts the batch's requests and latency, gives the
/// forwarding buffers back, and says how the batch ended.
fn finish(
    core: &Core,
    pass: Pass2<'_>,
    started: std::time::Instant,
    planned: Planned,
    buf_len: usize,
    flow: Flow,
) -> BatchEnd {
    let Planned {
        fanout, end, stop, ..
    } = planned;
    let Pass2 {
        classes, parsed, ..
    } = pass;
    core.counters.borrow_mut().requests += parsed;
    if parsed > 0 {
        let ns = started.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
        core.latency.borrow_mut().record(&classes, ns);
    }
    // Pass 2 must take exactly the remote outcomes pass 1 asked for: the
    // two passes parse the same bytes into the same op sequence.
    debug_assert!(
        flow != Flow::Continue
            || fanout.as_ref().is_none_or(|f| {
                (0..f.replies.len())
                    .all(|d| f.replies[d].is_none() || f.cursors[d] == f.batches[d].ops.len())
            }),
        "pass 2 did not consume the ops pass 1 forwarded"
    );
    if let Some(fanout) = fanout {
        core.router.recycle_fanout(fanout);
    }
    let (discard, flow) = match stop {
        Stop::Discard(n) => (n, flow),
        Stop::Close => (0, Flow::Close),
        Stop::More => (0, flow),
    };
    BatchEnd {
        consumed: if matches!(stop, Stop::Discard(_)) {
            buf_len
        } else {
            end
        },
        discard,
        flow,
    }
}
