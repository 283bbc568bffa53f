//! A metric as data: one row of (stat name, Prometheus name and labels,
//! kind, help, value) that both views render.

/// How a value behaves over time, which Prometheus needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (until `stats reset` or a restart).
    Counter,
    /// Goes up and down.
    Gauge,
}

/// A metric's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A count or a size.
    Int(u64),
    /// Seconds and microseconds (CPU time), printed `secs.micros`.
    Seconds(u64, u32),
    /// Text (`version`): memcached-only, or a label in Prometheus.
    Text(String),
}

impl Value {
    /// The value as `stats` prints it.
    pub fn stat_text(&self) -> String {
        match self {
            Value::Int(v) => v.to_string(),
            Value::Seconds(s, us) => format!("{s}.{us:06}"),
            Value::Text(t) => t.clone(),
        }
    }
}

/// One row: a value with its memcached `stats` name and/or its Prometheus
/// name and labels. A row without a `stat` name is exposition-only (a
/// memcached_exporter metric derived from several stats); one without a
/// `prom` name is `stats`-only (a setting-like figure with no exporter
/// counterpart).
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// The name in memcached's `stats` reply.
    pub stat: Option<&'static str>,
    /// The Prometheus metric name.
    pub prom: Option<&'static str>,
    /// Prometheus labels.
    pub labels: Vec<(&'static str, String)>,
    /// Counter or gauge.
    pub kind: Kind,
    /// Prometheus `# HELP` text.
    pub help: &'static str,
    /// The value.
    pub value: Value,
}

/// Rows under construction, with a short way to add each kind.
#[derive(Default)]
pub struct Rows(pub Vec<Metric>);

impl Rows {
    /// Adds a row and returns it, to attach a Prometheus name.
    pub fn add(
        &mut self,
        stat: Option<&'static str>,
        kind: Kind,
        help: &'static str,
        value: Value,
    ) -> &mut Metric {
        self.0.push(Metric {
            stat,
            prom: None,
            labels: Vec::new(),
            kind,
            help,
            value,
        });
        self.0.last_mut().expect("just pushed")
    }

    /// Adds rows that all carry one Prometheus label (a per-core or
    /// per-class group): (stats name, Prometheus name, kind, help, value)
    /// each.
    pub fn add_labelled(
        &mut self,
        label: &'static str,
        value: &str,
        rows: impl IntoIterator<Item = (Option<&'static str>, &'static str, Kind, &'static str, u64)>,
    ) {
        for (stat, prom, kind, help, v) in rows {
            self.add(stat, kind, help, Value::Int(v))
                .prom(prom)
                .label(label, value);
        }
    }

    /// A gauge under its `stats` name.
    pub fn gauge(&mut self, stat: &'static str, help: &'static str, v: u64) -> &mut Metric {
        self.add(Some(stat), Kind::Gauge, help, Value::Int(v))
    }
}

impl Metric {
    /// Names the row in the Prometheus exposition.
    pub fn prom(&mut self, name: &'static str) -> &mut Metric {
        self.prom = Some(name);
        self
    }

    /// Adds a Prometheus label.
    pub fn label(&mut self, name: &'static str, value: impl Into<String>) -> &mut Metric {
        self.labels.push((name, value.into()));
        self
    }
}

/// One metric of a `T` as data: its names, kind, help and how to read its
/// value. Every counter and gauge is one of these in a static table (see
/// `metrics::table`), so adding a metric is a field and a row, and a test
/// can walk every row (a counter reads 0 after `stats reset`, a gauge
/// keeps its value).
pub struct Row<T> {
    /// The memcached `stats` name, `None` for a Prometheus-only row.
    pub stat: Option<&'static str>,
    /// The Prometheus name, `None` for a `stats`-only row.
    pub prom: Option<&'static str>,
    /// Fixed Prometheus labels.
    pub labels: &'static [(&'static str, &'static str)],
    /// Counter or gauge.
    pub kind: Kind,
    /// The Prometheus help text.
    pub help: &'static str,
    /// Reads the value.
    pub value: fn(&T) -> u64,
}

impl<T> Row<T> {
    /// A counter under its `stats` name.
    pub const fn counter(stat: &'static str, help: &'static str, value: fn(&T) -> u64) -> Self {
        Row {
            stat: Some(stat),
            prom: None,
            labels: &[],
            kind: Kind::Counter,
            help,
            value,
        }
    }

    /// A gauge under its `stats` name.
    pub const fn gauge(stat: &'static str, help: &'static str, value: fn(&T) -> u64) -> Self {
        Row {
            kind: Kind::Gauge,
            ..Row::counter(stat, help, value)
        }
    }

    /// The same row also named in the Prometheus exposition.
    pub const fn prom(self, name: &'static str) -> Self {
        Row {
            prom: Some(name),
            ..self
        }
    }

    /// The same row, with fixed Prometheus labels.
    pub const fn labels(self, labels: &'static [(&'static str, &'static str)]) -> Self {
        Row { labels, ..self }
    }

    /// The same row, seen only by Prometheus.
    pub const fn prom_only(self, name: &'static str) -> Self {
        Row {
            stat: None,
            prom: Some(name),
            ..self
        }
    }
}

impl Rows {
    /// Adds a row of `table` for each of its rows, read from `of`.
    pub fn table<T>(&mut self, table: &[Row<T>], of: &T) {
        for row in table {
            self.row(row, of);
        }
    }

    /// As [`Rows::table`], every row also labelled `label="value"` (a
    /// per-core group).
    pub fn table_labelled<T>(
        &mut self,
        table: &[Row<T>],
        of: &T,
        label: &'static str,
        value: &str,
    ) {
        for row in table {
            self.row(row, of).label(label, value);
        }
    }

    fn row<T>(&mut self, row: &Row<T>, of: &T) -> &mut Metric {
        let metric = self.add(row.stat, row.kind, row.help, Value::Int((row.value)(of)));
        metric.prom = row.prom;
        for &(name, value) in row.labels {
            metric.label(name, value);
        }
        metric
    }
}

/// Appends the `stats` lines of `rows` (those with a memcached name), each
/// name after `prefix` (`core:N:`, `items:N:`, ...).
pub fn stat_lines(lines: &mut Vec<(String, String)>, prefix: &str, rows: &Rows) {
    for row in &rows.0 {
        if let Some(stat) = row.stat {
            lines.push((format!("{prefix}{stat}"), row.value.stat_text()));
        }
    }
}
