//! The process's metric registry.

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::{Metric, Registry};

use crate::process;

/// Every metric of the process, served at `/metrics`.
///
/// Components register their metrics while they are built; the lock is
/// only taken to register and when `/metrics` is scraped, never on a data path.
#[derive(Default)]
pub struct Metrics {
    registry: Mutex<Registry>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `metric` under `tidemark_<name>`.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        let mut r = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        // The encoder ends HELP with a period itself.
        r.register(
            format!("tidemark_{name}"),
            help.trim_end_matches('.'),
            metric,
        );
    }

    /// The OpenMetrics text exposition of all metrics plus the process metrics.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        {
            let r = self.registry.lock().unwrap_or_else(|p| p.into_inner());
            // Writing into a String cannot fail.
            let _ = encode(&mut out, &r);
        }
        if let Some(stripped) = out.strip_suffix("# EOF\n") {
            out.truncate(stripped.len());
        }
        process::encode(&mut out);
        out.push_str("# EOF\n");
        out
    }

    pub const CONTENT_TYPE: &'static str =
        "application/openmetrics-text; version=1.0.0; charset=utf-8";
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;

    #[test]
    fn registered_metrics_and_process_metrics_are_exposed() {
        let m = Metrics::new();
        let c: Counter = Counter::default();
        m.register("test_events", "Events seen.", c.clone());
        c.inc_by(3);
        let text = m.encode();
        assert!(text.contains("tidemark_test_events_total 3"), "{text}");
        assert!(text.contains("process_resident_memory_bytes"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
