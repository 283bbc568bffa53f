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

/// The plot's geometry: where a percentile and a latency land on the page.
struct Chart {
    w: f64,
    h: f64,
    left: f64,
    right: f64,
    top: f64,
    plot_w: f64,
    plot_h: f64,
    /// Decades of latency shown, lowest and highest (log10 of µs).
    lo_exp: f64,
    hi_exp: f64,
}

/// Nines shown on the percentile axis (up to 99.999 %).
const MAX_NINES: f64 = 5.0;

impl Chart {
    /// Sized to hold every series' smallest and largest value.
    fn fitting(series: &[(&str, &Histogram<u64>)]) -> Chart {
        let (w, h, left, right, top, bottom) = (860.0, 480.0, 80.0, 180.0, 50.0, 60.0);
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
        let lo_exp = lo.log10().floor();
        Chart {
            w,
            h,
            left,
            right,
            top,
            plot_w: w - left - right,
            plot_h: h - top - bottom,
            lo_exp,
            hi_exp: hi.log10().ceil().max(lo_exp + 1.0),
        }
    }

    fn x_of(&self, q: f64) -> f64 {
        self.left + self.plot_w * ((1.0 / (1.0 - q.min(0.999_99))).log10() / MAX_NINES)
    }

    fn y_of(&self, v: f64) -> f64 {
        self.top
            + self.plot_h * (1.0 - (v.max(1.0).log10() - self.lo_exp) / (self.hi_exp - self.lo_exp))
    }

    /// Background, title and the two axis names.
    fn frame(&self, out: &mut String, title: &str) {
        let (w, h, left, top) = (self.w, self.h, self.left, self.top);
        let mid_x = left + self.plot_w / 2.0;
        let mid_y = top + self.plot_h / 2.0;
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(out, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
        let _ = writeln!(
            out,
            r#"<text x="{mid_x}" y="25" font-size="16" text-anchor="middle">{}</text>"#,
            escape(title)
        );
        let _ = writeln!(
            out,
            r#"<text x="{mid_x}" y="{}" text-anchor="middle">percentile</text>"#,
            h - 15.0
        );
        let _ = writeln!(
            out,
            r#"<text x="18" y="{mid_y}" transform="rotate(-90 18 {mid_y})" text-anchor="middle">latency</text>"#
        );
    }

    /// A grid line and label at each nine and each decade of latency.
    fn grid(&self, out: &mut String) {
        let (left, top, bottom) = (self.left, self.top, self.top + self.plot_h);
        for (i, label) in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
            .iter()
            .enumerate()
        {
            let x = left + self.plot_w * i as f64 / MAX_NINES;
            let _ = writeln!(
                out,
                r##"<line x1="{x}" y1="{top}" x2="{x}" y2="{bottom}" stroke="#ddd"/>"##
            );
            let _ = writeln!(
                out,
                r#"<text x="{x}" y="{}" text-anchor="middle">{label}</text>"#,
                bottom + 18.0
            );
        }
        let mut e = self.lo_exp;
        while e <= self.hi_exp {
            let y = self.y_of(10f64.powf(e));
            let _ = writeln!(
                out,
                r##"<line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/>"##,
                left + self.plot_w
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
    }

    /// The `i`th series' curve and its legend entry.
    fn curve(&self, out: &mut String, i: usize, name: &str, hist: &Histogram<u64>) {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<String> = hist
            .iter_quantiles(10)
            .filter(|v| v.quantile_iterated_to() <= 0.999_99)
            .map(|v| {
                format!(
                    "{:.1},{:.1}",
                    self.x_of(v.quantile_iterated_to()),
                    self.y_of(v.value_iterated_to() as f64)
                )
            })
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        let ly = self.top + 20.0 + 20.0 * i as f64;
        let legend_x = self.w - self.right;
        let _ = writeln!(
            out,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="3"/>"#,
            legend_x + 15.0,
            legend_x + 40.0
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}">{}</text>"#,
            legend_x + 46.0,
            ly + 4.0,
            escape(name)
        );
    }
}

/// An SVG chart of latency (log scale, µs) against percentile (log scale
/// of 1/(1-p): 0, 90, 99, 99.9, 99.99, 99.999 % evenly spaced).
pub fn svg(title: &str, series: &[(&str, &Histogram<u64>)]) -> String {
    let chart = Chart::fitting(series);
    let mut out = String::new();
    chart.frame(&mut out, title);
    chart.grid(&mut out);
    for (i, (name, hist)) in series.iter().enumerate() {
        chart.curve(&mut out, i, name, hist);
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
