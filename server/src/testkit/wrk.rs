//! wrk (the HTTP load generator) for benches: run it, and read its
//! `--latency` report. "Non-2xx" answers or socket errors are failures.

use std::process::Command;

use anyhow::{ensure, Context};

/// One wrk run: requests/s, p50 and p99 (ms), and the request count.
#[derive(Debug, Clone, Copy)]
pub struct Round {
    pub rps: f64,
    pub p50: f64,
    pub p99: f64,
    pub requests: u64,
}

/// `wrk -t2 -c16 -d<seconds>s --latency -H <header> <url>`; its report.
pub fn run(url: &str, header: &str, seconds: u64) -> anyhow::Result<Round> {
    let out = Command::new("wrk")
        .args(["-t2", "-c16", &format!("-d{seconds}s"), "--latency", "-H", header, url])
        .output()
        .context("cannot run wrk (make bench installs it)")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    ensure!(out.status.success(), "wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    ensure!(!text.contains("Non-2xx") && !text.contains("Socket errors"), "wrk saw failures:\n{text}");
    parse(&text)
}

/// Reads wrk's `--latency` output.
pub fn parse(out: &str) -> anyhow::Result<Round> {
    let ms = |v: &str| -> Option<f64> {
        if let Some(x) = v.strip_suffix("us") {
            x.parse::<f64>().ok().map(|x| x / 1000.0)
        } else if let Some(x) = v.strip_suffix("ms") {
            x.parse().ok()
        } else {
            v.strip_suffix('s').and_then(|x| x.parse::<f64>().ok()).map(|x| x * 1000.0)
        }
    };
    let pick =
        |label: &str| out.lines().find_map(|l| l.trim().strip_prefix(label).map(|r| r.trim().to_string()));
    // "  12345 requests in 10.00s, 1.23GB read"
    let requests = out
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ").and_then(|(n, _)| n.parse().ok()))
        .context("no request count in wrk output")?;
    Ok(Round {
        p50: pick("50%").and_then(|v| ms(&v)).context("no p50 in wrk output")?,
        p99: pick("99%").and_then(|v| ms(&v)).context("no p99 in wrk output")?,
        rps: pick("Requests/sec:").and_then(|v| v.parse().ok()).context("no Requests/sec in wrk output")?,
        requests,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_latency_report_is_read() {
        let out = "Running 6s test @ http://127.0.0.1:1/\n  Latency Distribution\n     50%  452.00us\n     \
                   75%    1.20ms\n     99%    2.50ms\n  190000 requests in 6.00s, 30.00MB read\n\
                   Requests/sec:  31666.10\n";
        let r = super::parse(out).expect("parsed");
        assert_eq!((r.p50, r.p99, r.rps, r.requests), (0.452, 2.5, 31666.1, 190000));
    }
}
