//! One target's measured figures, and the side-by-side table with
//! tidemark's ratio to each peer and the goals of issue #10.

use serde::{Deserialize, Serialize};

use crate::ingest::IngestReport;
use crate::query::QueryStat;

/// Everything measured on one target in one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TargetResult {
    pub(crate) name: String,
    pub(crate) ingest: IngestReport,
    /// CPU seconds (user + system, all target processes) during ingestion.
    pub(crate) ingest_cpu_seconds: f64,
    /// Resident memory before the first write.
    pub(crate) rss_idle_bytes: u64,
    pub(crate) rss_after_ingest_bytes: u64,
    /// Peak resident memory (VmHWM, summed over processes) at the end.
    pub(crate) hwm_bytes: u64,
    /// Data directories right after ingestion (WAL, head, blocks, parts).
    pub(crate) data_dir_bytes: u64,
    /// After the target's flush, when it has one (blocks or parts only).
    pub(crate) flushed_bytes: Option<u64>,
    /// What the disk figures measure.
    pub(crate) disk_what: String,
    pub(crate) queries: Vec<QueryStat>,
}

impl TargetResult {
    fn samples_per_s(&self) -> f64 {
        self.ingest.samples as f64 / self.ingest.seconds
    }
    fn cpu_per_m(&self) -> f64 {
        self.ingest_cpu_seconds / self.ingest.samples as f64 * 1e6
    }
    /// Peak memory above idle per series written (churned ones included).
    fn mem_per_series(&self) -> f64 {
        self.hwm_bytes.saturating_sub(self.rss_idle_bytes) as f64
            / self.ingest.series_created as f64
    }
    fn bytes_per_sample(&self) -> f64 {
        self.data_dir_bytes as f64 / self.ingest.samples as f64
    }
    fn flushed_per_sample(&self) -> f64 {
        self.flushed_bytes
            .map_or(f64::NAN, |b| b as f64 / self.ingest.samples as f64)
    }
    /// After a flush when there is one, else the data directory.
    fn disk_per_sample(&self) -> f64 {
        let f = self.flushed_per_sample();
        if f.is_nan() {
            self.bytes_per_sample()
        } else {
            f
        }
    }
}

struct Row {
    name: String,
    /// One value per target.
    values: Vec<f64>,
    fmt: fn(f64) -> String,
}

fn num(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn mib(v: f64) -> String {
    format!("{:.0} MiB", v / 1048576.0)
}

fn rows(results: &[TargetResult]) -> Vec<Row> {
    let col = |f: fn(&TargetResult) -> f64| results.iter().map(f).collect::<Vec<_>>();
    let mut rows = vec![
        Row {
            name: "samples/s ingested".into(),
            values: col(TargetResult::samples_per_s),
            fmt: |v| format!("{v:.0}"),
        },
        Row {
            name: "CPU s per M samples".into(),
            values: col(TargetResult::cpu_per_m),
            fmt: num,
        },
        Row {
            name: "peak memory (VmHWM)".into(),
            values: col(|r| r.hwm_bytes as f64),
            fmt: mib,
        },
        Row {
            name: "memory per series, bytes".into(),
            values: col(TargetResult::mem_per_series),
            fmt: |v| format!("{v:.0}"),
        },
        Row {
            name: "disk bytes/sample, data dir after ingest".into(),
            values: col(TargetResult::bytes_per_sample),
            fmt: num,
        },
        Row {
            name: "disk bytes/sample after flush".into(),
            values: col(TargetResult::flushed_per_sample),
            fmt: num,
        },
    ];
    if let Some(first) = results.first() {
        for (i, q) in first.queries.iter().enumerate() {
            for (p, get) in [
                ("p50", (|q: &QueryStat| q.p50_ms) as fn(&QueryStat) -> f64),
                ("p99", |q| q.p99_ms),
            ] {
                let values = results
                    .iter()
                    .map(|r| {
                        r.queries
                            .get(i)
                            .filter(|x| x.kind == q.kind && x.errors == 0)
                            .map_or(f64::NAN, get)
                    })
                    .collect();
                rows.push(Row {
                    name: format!("{} {p} ms", q.kind),
                    values,
                    fmt: num,
                });
            }
        }
    }
    rows
}

/// The markdown table: one column per target, then the first target's
/// (tidemark's) ratio to each target not named `tidemark*`.
pub(crate) fn table(results: &[TargetResult]) -> String {
    let peers: Vec<usize> = (1..results.len())
        .filter(|i| !results[*i].name.starts_with("tidemark"))
        .collect();
    let mut out = String::from("| measure |");
    for r in results {
        out += &format!(" {} |", r.name);
    }
    for p in &peers {
        out += &format!(" {} ÷ {} |", results[0].name, results[*p].name);
    }
    out += "\n|---|";
    out += &"---:|".repeat(results.len() + peers.len());
    out += "\n";
    for row in rows(results) {
        out += &format!("| {} |", row.name);
        for v in &row.values {
            out += &format!(" {} |", (row.fmt)(*v));
        }
        for p in &peers {
            out += &format!(" {} |", ratio(row.values[0], row.values[*p]));
        }
        out += "\n";
    }
    out
}

fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".into()
    }
}

/// One line per goal of issue #10: met, missed, or not measured.
pub(crate) fn goals(results: &[TargetResult]) -> String {
    let Some(t) = results.first() else {
        return String::new();
    };
    let find = |n: &str| results.iter().find(|r| r.name.starts_with(n));
    let vm = find("victoria");
    let prom = find("prometheus");
    let mut out = String::new();
    let mut line =
        |goal: &str, peer: Option<&TargetResult>, f: &dyn Fn(&TargetResult) -> (f64, f64)| {
            let verdict = match peer {
                None => "not measured (peer missing)".to_string(),
                Some(p) => {
                    let (mine, limit) = f(p);
                    let met = if mine <= limit { "met" } else { "MISSED" };
                    format!("{met} ({} vs limit {})", num(mine), num(limit))
                }
            };
            out += &format!("- {goal}: {verdict}\n");
        };
    line("ingestion CPU per sample <= VictoriaMetrics", vm, &|p| {
        (t.cpu_per_m(), p.cpu_per_m())
    });
    line("ingestion CPU per sample <= 1/3 Prometheus", prom, &|p| {
        (t.cpu_per_m(), p.cpu_per_m() / 3.0)
    });
    line("memory per series <= VictoriaMetrics", vm, &|p| {
        (t.mem_per_series(), p.mem_per_series())
    });
    line("disk bytes per sample <= Prometheus", prom, &|p| {
        (t.disk_per_sample(), p.disk_per_sample())
    });
    for (i, q) in t.queries.iter().enumerate() {
        let kind = q.kind.clone();
        line(&format!("{kind} p50 <= 1/2 Prometheus"), prom, &|p| {
            (
                q.p50_ms,
                p.queries.get(i).map_or(f64::NAN, |x| x.p50_ms / 2.0),
            )
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str, cpu: f64, p50: f64) -> TargetResult {
        TargetResult {
            name: name.into(),
            ingest: IngestReport {
                samples: 1_000_000,
                series_created: 1000,
                seconds: 10.0,
                ..Default::default()
            },
            ingest_cpu_seconds: cpu,
            rss_idle_bytes: 0,
            rss_after_ingest_bytes: 0,
            hwm_bytes: 1_000_000,
            data_dir_bytes: 2_000_000,
            flushed_bytes: None,
            disk_what: String::new(),
            queries: vec![QueryStat {
                kind: "rate 1h".into(),
                query: String::new(),
                p50_ms: p50,
                p99_ms: p50,
                series: 1,
                errors: 0,
                first_error: None,
            }],
        }
    }

    #[test]
    fn table_has_ratios_and_goals() {
        let r = [
            target("tidemark", 2.0, 10.0),
            target("victoria-metrics", 4.0, 5.0),
            target("prometheus", 3.0, 30.0),
        ];
        let t = table(&r);
        assert!(
            t.contains("| CPU s per M samples | 2.00 | 4.00 | 3.00 | 0.50x | 0.67x |"),
            "{t}"
        );
        assert!(
            t.contains("| rate 1h p50 ms | 10.0 | 5.00 | 30.0 | 2.00x | 0.33x |"),
            "{t}"
        );
        let g = goals(&r);
        assert!(g.contains("CPU per sample <= VictoriaMetrics: met"), "{g}");
        assert!(g.contains("1/3 Prometheus: MISSED"), "{g}");
        assert!(g.contains("rate 1h p50 <= 1/2 Prometheus: met"), "{g}");
    }
}
