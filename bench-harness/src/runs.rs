//! The two load modes: `run` loads one server; `compare` loads two in
//! alternating rounds, because on a noisy machine only ratios taken in the
//! same run hold.

use crate::load::Results;
use crate::{config, measure, median, output, write_file, Failure, Summary};

/// Arguments of `run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Server address.
    #[arg(short = 's', long, default_value = "127.0.0.1:11211")]
    pub server: String,
    /// Server process id: report its CPU time per request. A list
    /// (`--server-pid 1,2,3`) adds up every process's CPU: a proxy and its
    /// nodes.
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Write the latency distribution (all operations) in HdrHistogram's
    /// percentile text format to this file.
    #[arg(long)]
    pub hgrm: Option<std::path::PathBuf>,
    /// Draw the latency percentile curves (get, set, all) as SVG.
    #[arg(long)]
    pub plot: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub load: crate::Args,
}

/// Arguments of `compare`.
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// Server A (the baseline).
    #[arg(long)]
    pub a: String,
    /// Server B.
    #[arg(long)]
    pub b: String,
    /// Process id of A, for CPU per request (a list adds them up).
    #[arg(long, value_delimiter = ',')]
    pub a_pid: Vec<u32>,
    /// Process id of B, for CPU per request (a list adds them up).
    #[arg(long, value_delimiter = ',')]
    pub b_pid: Vec<u32>,
    /// A-then-B rounds.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Also write every round as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Draw both servers' latency percentile curves (all rounds merged)
    /// as SVG.
    #[arg(long)]
    pub plot: Option<std::path::PathBuf>,
    /// Names for A and B in the plot.
    #[arg(long, default_value = "A")]
    pub a_name: String,
    /// Name for B in the plot.
    #[arg(long, default_value = "B")]
    pub b_name: String,
    #[command(flatten)]
    pub load: crate::Args,
}

/// One server under the load: the report, and the files asked for.
pub fn run(a: RunArgs) -> Result<(), Failure> {
    let config = config(&a.server, &a.load)?;
    let (summary, results) = measure(&config, a.load.prefill, &a.server_pid, true)?;
    if let Some(path) = a.json {
        write_file(&path, &summary.json())?;
    }
    let total = results.total();
    if let Some(path) = a.hgrm {
        write_file(&path, &output::hgrm(&total.latency))?;
    }
    if let Some(path) = a.plot {
        let title = format!("{}: latency by percentile", a.server);
        let series = [
            ("get", &results.gets.latency),
            ("set", &results.sets.latency),
            ("all", &total.latency),
        ];
        write_file(&path, &output::svg(&title, &series))?;
    }
    if summary.mismatches > 0 {
        return Err(Failure::Mismatches(summary.mismatches));
    }
    Ok(())
}

/// A then B, `rounds` times; each round printed, then the median ratios.
pub fn compare(a: CompareArgs) -> Result<(), Failure> {
    let (config_a, config_b) = (config(&a.a, &a.load)?, config(&a.b, &a.load)?);
    let mut rows: Vec<(Summary, Summary)> = Vec::new();
    let mut merged: Option<(Results, Results)> = None;
    for round in 0..a.rounds.max(1) {
        let first = round == 0 && a.load.prefill;
        let (sa, ra) = measure(&config_a, first, &a.a_pid, false)?;
        let (sb, rb) = measure(&config_b, first, &a.b_pid, false)?;
        merged = Some(match merged {
            None => (ra, rb),
            Some((ma, mb)) => (ma.merged(&ra), mb.merged(&rb)),
        });
        println!(
            "round {round}: A {}  |  B {}",
            round_line(&sa),
            round_line(&sb)
        );
        rows.push((sa, sb));
    }
    print_ratios(&rows, !a.a_pid.is_empty() && !a.b_pid.is_empty());
    if let Some(path) = a.json {
        let rounds: Vec<String> = rows
            .iter()
            .map(|(a, b)| format!("{{\"a\": {}, \"b\": {}}}", a.json(), b.json()))
            .collect();
        write_file(&path, &format!("{{\"rounds\": [{}]}}", rounds.join(", ")))?;
    }
    if let (Some(path), Some((ma, mb))) = (a.plot, merged) {
        let (ta, tb) = (ma.total(), mb.total());
        let title = format!("{} vs {}: latency by percentile", a.a_name, a.b_name);
        let series = [
            (a.a_name.as_str(), &ta.latency),
            (a.b_name.as_str(), &tb.latency),
        ];
        write_file(&path, &output::svg(&title, &series))?;
    }
    Ok(())
}

/// One server's figures in a round.
fn round_line(s: &Summary) -> String {
    format!(
        "{:.0} ops/s p50 {}us p99 {}us cpu {}",
        s.ops_per_sec,
        s.p50_us,
        s.p99_us,
        s.server_cpu_us_per_request
            .map_or("-".into(), |c| format!("{c:.2}us/req"))
    )
}

/// The median of B/A over the rounds, for each figure.
fn print_ratios(rows: &[(Summary, Summary)], with_cpu: bool) {
    let ratio =
        |f: &dyn Fn(&Summary) -> f64| median(rows.iter().map(|(a, b)| f(b) / f(a)).collect());
    println!(
        "median B/A: throughput {:.2}x, p50 {:.2}x, p99 {:.2}x, p99.9 {:.2}x",
        ratio(&|s| s.ops_per_sec),
        ratio(&|s| s.p50_us as f64),
        ratio(&|s| s.p99_us as f64),
        ratio(&|s| s.p999_us as f64)
    );
    if with_cpu {
        println!(
            "median B/A: server CPU per request {:.2}x",
            ratio(&|s| s.server_cpu_us_per_request.unwrap_or(f64::NAN))
        );
    }
}
