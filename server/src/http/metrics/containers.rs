//! Gauges of live containers, from the runtime monitor's last round (no
//! engine call at scrape time).

use super::text::{Kind, Text};
use crate::runtime::Monitor;

pub fn write(t: &mut Text, monitor: &Monitor) {
    let all = monitor.all_latest();
    let labelled: Vec<(String, &crate::runtime::monitor::Snapshot)> =
        all.iter().map(|(_, s)| (format!("{}/{}", s.project, s.service), s)).collect();
    t.family("slipway_container_up", Kind::Gauge, "1 while a service's live container is running.");
    for (service, s) in &labelled {
        let up = s.state.as_ref().is_some_and(|st| st.running);
        t.sample("slipway_container_up", &[("service", service.as_str())], if up { 1.0 } else { 0.0 });
    }
    t.family(
        "slipway_container_restarts",
        Kind::Gauge,
        "Restarts of a service's live container by the engine.",
    );
    for (service, s) in &labelled {
        if let Some(state) = &s.state {
            t.sample(
                "slipway_container_restarts",
                &[("service", service.as_str())],
                state.restart_count as f64,
            );
        }
    }
    t.family(
        "slipway_container_cpu_percent",
        Kind::Gauge,
        "CPU use of a service's live container, % of one CPU.",
    );
    for (service, s) in &labelled {
        if let Some(p) = s.points.back() {
            let cpu = f64::from(p.cpu_tenths) / 10.0;
            t.sample("slipway_container_cpu_percent", &[("service", service.as_str())], cpu);
        }
    }
    t.family("slipway_container_memory_bytes", Kind::Gauge, "Memory in use by a service's live container.");
    for (service, s) in &labelled {
        if let Some(p) = s.points.back() {
            t.sample(
                "slipway_container_memory_bytes",
                &[("service", service.as_str())],
                p.memory_bytes as f64,
            );
        }
    }
    t.family(
        "slipway_container_memory_limit_bytes",
        Kind::Gauge,
        "Memory limit of a service's live container.",
    );
    for (service, s) in &labelled {
        if s.memory_limit_bytes > 0 {
            let limit = s.memory_limit_bytes as f64;
            t.sample("slipway_container_memory_limit_bytes", &[("service", service.as_str())], limit);
        }
    }
}
