//! Typed metrics: each core's counters as a [`CoreReport`](report::CoreReport), summed into
//! [`Totals`](report::Totals), and laid out once as rows of [`Metric`](rows::Metric) ([`table`]) that the
//! memcached `stats` reply and the Prometheus exposition ([`prometheus`])
//! both walk — so a counter added to the table shows up in both, under
//! memcached's name in one and memcached_exporter's in the other.
//!
//! - [`report`]: the per-core snapshot and the server-wide sum.
//! - [`rows`]: a metric as a row (name, kind, help, value) and a table of
//!   them.
//! - [`latency`], [`hotkeys`], [`prefix_stats`]: what each core counts
//!   besides its counters.
//! - [`table`]: the rows, in memcached's `stats` order.
//! - [`classes`]: `stats items`/`stats slabs`, memcached's size classes.
//! - [`prometheus`]: the text exposition format.
//! - [`gather`]: collecting every core's report outside a client batch.
//! - [`endpoint`]: the `--metrics-listen` HTTP listener.

pub mod classes;
pub mod endpoint;
pub mod gather;
pub mod hotkeys;
pub mod latency;
pub mod prefix_stats;
pub mod prometheus;
pub mod report;
pub mod rows;
pub mod settings;
pub mod snapshot;
pub mod table;
