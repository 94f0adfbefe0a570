//! The Prometheus text exposition format, version 0.0.4: `# HELP` and
//! `# TYPE` once per family, then its samples; label values and help texts
//! escaped as the format says.

use std::fmt::Write as _;

/// The `Content-Type` of the format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A histogram's state: `cumulative[i]` observations were ≤ `bounds[i]`;
/// `count` is every observation (the `+Inf` bucket).
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub bounds: Vec<f64>,
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum: f64,
}

impl Histogram {
    /// From per-bucket (non-cumulative) counts: one per bound, then the
    /// overflow bucket.
    pub fn from_buckets(bounds: &[f64], per_bucket: &[u64], sum: f64) -> Histogram {
        let mut cumulative = Vec::with_capacity(bounds.len());
        let mut running = 0u64;
        for n in per_bucket.iter().take(bounds.len()) {
            running = running.saturating_add(*n);
            cumulative.push(running);
        }
        cumulative.resize(bounds.len(), running);
        let overflow: u64 = per_bucket.iter().skip(bounds.len()).sum();
        Histogram { bounds: bounds.to_vec(), cumulative, count: running.saturating_add(overflow), sum }
    }
}

/// Builds one exposition.
#[derive(Debug, Default)]
pub struct Text {
    out: String,
}

impl Text {
    pub fn new() -> Text {
        Text::default()
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.out, " {}", number(value));
    }

    /// The `_bucket` (cumulative, ending with `+Inf`), `_sum` and `_count`
    /// samples of a histogram family started with [`family`](Self::family).
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        for (bound, n) in h.bounds.iter().zip(&h.cumulative) {
            let _ = write!(self.out, "{name}_bucket");
            self.labels(labels, Some(number(*bound).as_str()));
            let _ = writeln!(self.out, " {n}");
        }
        let _ = write!(self.out, "{name}_bucket");
        self.labels(labels, Some("+Inf"));
        let _ = writeln!(self.out, " {}", h.count);
        let _ = write!(self.out, "{name}_sum");
        self.labels(labels, None);
        let _ = writeln!(self.out, " {}", number(h.sum));
        let _ = write!(self.out, "{name}_count");
        self.labels(labels, None);
        let _ = writeln!(self.out, " {}", h.count);
    }

    pub fn finish(self) -> String {
        self.out
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let mut first = true;
        for (key, value) in labels.iter().copied().chain(le.map(|le| ("le", le))) {
            if !first {
                self.out.push(',');
            }
            first = false;
            let _ = write!(self.out, "{key}=\"{}\"", escape_label(value));
        }
        self.out.push('}');
    }
}

/// A sample value: Go's float syntax (`+Inf`, `NaN`), integers without a
/// fraction.
pub fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escaping() {
        let mut t = Text::new();
        t.family("x_total", Kind::Counter, "Things\\done\nok");
        t.sample("x_total", &[("service", "a\"b\\c\nd")], 3.0);
        t.sample("x_total", &[], 0.5);
        assert_eq!(
            t.finish(),
            "# HELP x_total Things\\\\done\\nok\n# TYPE x_total counter\n\
             x_total{service=\"a\\\"b\\\\c\\nd\"} 3\nx_total 0.5\n"
        );
    }

    #[test]
    fn histograms_are_cumulative_and_end_in_inf() {
        let h = Histogram::from_buckets(&[0.1, 1.0], &[2, 0, 5], 7.25);
        assert_eq!(h.cumulative, [2, 2]);
        assert_eq!(h.count, 7);
        let mut t = Text::new();
        t.histogram("d", &[("s", "w")], &h);
        assert_eq!(
            t.finish(),
            "d_bucket{s=\"w\",le=\"0.1\"} 2\nd_bucket{s=\"w\",le=\"1\"} 2\nd_bucket{s=\"w\",le=\"+Inf\"} 7\n\
             d_sum{s=\"w\"} 7.25\nd_count{s=\"w\"} 7\n"
        );
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(1e21), "1000000000000000000000");
    }
}
