//! Every core's [`CoreReport`], collected outside any client batch (for the
//! metrics endpoint): the asking core reports for itself and sends an
//! [`CoreCommand::Stats`] to each other core over the same lock-free mesh that
//! forwards client ops, so gathering takes no lock and each shard is read
//! only by its own core.

use crate::runtime::batch::message::Batch;
use crate::runtime::batch::router::{Answered, Sending};
use crate::runtime::metrics::report::CoreReport;
use crate::runtime::op::{CoreCommand, Op, Outcome, ReportLists};
use crate::runtime::server::core::Core;

/// The reports of every core still running, in core order (a core that
/// has shut down is left out).
pub async fn reports(core: &Core, also: ReportLists) -> Vec<CoreReport> {
    let mut tokens = Vec::with_capacity(core.cores);
    for dest in (0..core.cores).filter(|&c| c != core.id) {
        let mut batch = Batch::default();
        batch.push(&Op::Core(CoreCommand::Stats { also }));
        let token = match core.router.send(dest, batch, 0, usize::MAX) {
            Sending::Sent(token) => token,
            Sending::Full(wait) => wait.await,
        };
        tokens.push(token);
    }
    let mut reports = vec![crate::runtime::metrics::snapshot::of(
        core,
        &core.shard.borrow(),
        also,
    )];
    for token in tokens.into_iter().flatten() {
        let Some(Answered { mut replies, batch }) = core.router.wait(token).await else {
            continue;
        };
        core.router.recycle_batch(batch);
        for outcome in replies.outcomes.drain(..) {
            if let Outcome::Stats(report) = outcome {
                reports.push(*report);
            }
        }
        core.router.recycle_replies(replies);
    }
    reports.sort_by_key(|r| r.core);
    reports
}
