//! Latency outputs for other tools and for eyes: HdrHistogram's
//! percentile-distribution text (`--hgrm`, readable by HdrHistogram's
//! plotters) and an SVG percentile curve with a log-scaled tail axis
//! (`--plot`), one curve per series, so runs can be compared at a glance.

use hdrhistogram::Histogram;
use std::fmt::Write as _;

/// HdrHistogram's percentile distribution, values in microseconds.
pub fn hgrm(h: &Histogram<u64>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        let inverse = if q < 1.0 {
            format!("{:>14.2}", 1.0 / (1.0 - q))
        } else {
            format!("{:>14}", "")
        };
        let _ = writeln!(
            out,
            "{:>12.3} {:>14.12} {:>10} {inverse}",
            v.value_iterated_to() as f64,
            q,
            total
        );
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        h.mean(),
        h.stdev()
    );
    let _ = writeln!(
        out,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        h.max() as f64,
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        h.distinct_values()
    );
    out
}

const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
];

/// An SVG chart of latency (log scale, µs) against percentile (log scale
/// of 1/(1-p): 0, 90, 99, 99.9, 99.99, 99.999 % evenly spaced).
pub fn svg(title: &str, series: &[(&str, &Histogram<u64>)]) -> String {
    let (w, h, left, right, top, bottom) = (860.0, 480.0, 80.0, 180.0, 50.0, 60.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let max_nines = 5.0;
    let x_of = |q: f64| left + plot_w * ((1.0 / (1.0 - q.min(0.999_99))).log10() / max_nines);
    let lo = series
        .iter()
        .map(|(_, hist)| hist.min().max(1))
        .min()
        .unwrap_or(1) as f64;
    let hi = series
        .iter()
        .map(|(_, hist)| hist.max().max(2))
        .max()
        .unwrap_or(2) as f64;
    let (lo_exp, hi_exp) = (
        lo.log10().floor(),
        hi.log10().ceil().max(lo.log10().floor() + 1.0),
    );
    let y_of = |v: f64| top + plot_h * (1.0 - (v.max(1.0).log10() - lo_exp) / (hi_exp - lo_exp));
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="25" font-size="16" text-anchor="middle">{}</text>"#,
        left + plot_w / 2.0,
        escape(title)
    );
    for (i, label) in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
        .iter()
        .enumerate()
    {
        let x = left + plot_w * i as f64 / max_nines;
        let _ = writeln!(
            out,
            r##"<line x1="{x}" y1="{top}" x2="{x}" y2="{}" stroke="#ddd"/>"##,
            top + plot_h
        );
        let _ = writeln!(
            out,
            r#"<text x="{x}" y="{}" text-anchor="middle">{label}</text>"#,
            top + plot_h + 18.0
        );
    }
    let mut e = lo_exp;
    while e <= hi_exp {
        let y = y_of(10f64.powf(e));
        let _ = writeln!(
            out,
            r##"<line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/>"##,
            left + plot_w
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            left - 6.0,
            y + 4.0,
            micros_label(10f64.powf(e))
        );
        e += 1.0;
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">percentile</text>"#,
        left + plot_w / 2.0,
        h - 15.0
    );
    let _ = writeln!(
        out,
        r#"<text x="18" y="{}" transform="rotate(-90 18 {})" text-anchor="middle">latency</text>"#,
        top + plot_h / 2.0,
        top + plot_h / 2.0
    );
    for (i, (name, hist)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<String> = hist
            .iter_quantiles(10)
            .filter(|v| v.quantile_iterated_to() <= 0.999_99)
            .map(|v| {
                format!(
                    "{:.1},{:.1}",
                    x_of(v.quantile_iterated_to()),
                    y_of(v.value_iterated_to() as f64)
                )
            })
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        let ly = top + 20.0 + 20.0 * i as f64;
        let _ = writeln!(
            out,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="3"/>"#,
            w - right + 15.0,
            w - right + 40.0
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}">{}</text>"#,
            w - right + 46.0,
            ly + 4.0,
            escape(name)
        );
    }
    out.push_str("</svg>\n");
    out
}

fn micros_label(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{:.0} s", us / 1_000_000.0)
    } else if us >= 1000.0 {
        format!("{:.0} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(scale: u64) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 60_000_000, 3).unwrap();
        for i in 1..=10_000u64 {
            h.record(i * scale).unwrap();
        }
        h
    }

    #[test]
    fn hgrm_lists_percentiles_and_totals() {
        let text = hgrm(&sample(1));
        assert!(text.starts_with("       Value"));
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
            .collect();
        assert!(rows.len() > 20);
        // Cumulative counts end at the total; percentiles rise to 1.
        let last: Vec<&str> = rows.last().unwrap().split_whitespace().collect();
        assert_eq!(last[2], "10000");
        assert!(last[1].starts_with("1.0"));
        assert!(text.contains("Total count    =        10000"));
    }

    #[test]
    fn svg_has_one_curve_per_series() {
        let (a, b) = (sample(1), sample(3));
        let svg = svg("A <vs> B", &[("memcached", &a), ("segcore", &b)]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(
            svg.contains("memcached") && svg.contains("segcore") && svg.contains("A &lt;vs&gt; B")
        );
        assert!(svg.contains("99.99%"));
    }
}
