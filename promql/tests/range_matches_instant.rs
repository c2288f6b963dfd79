//! A range query must equal the instant queries at each of its steps.
//!
//! Range queries evaluate whatever subtrees allow it series by series
//! over all steps at once; instant queries always evaluate step by step.
//! Comparing the two over data with gaps, counter resets, staleness
//! markers, non-counter names and varying series sets checks that the
//! series-by-series paths (selectors, range functions, subqueries,
//! aggregations, binary operations and the step-by-step parents reading
//! their matrices) give bit-identical results and fail where the steps do.

#![allow(clippy::unwrap_used)]

use tidemark_model::{Labels, STALE_NAN, Sample};
use tidemark_promql::memstore::MemStore;
use tidemark_promql::{Engine, Value};

fn store() -> MemStore {
    let mut s = MemStore::new();
    for i in 0..12i64 {
        for name in ["req_total", "load", "h_bucket"] {
            let l = i.to_string();
            let g = (i % 3).to_string();
            let le = ["0.1", "1", "10", "+Inf"][(i % 4) as usize];
            let labels = match name {
                "h_bucket" => Labels::from_pairs([
                    ("__name__", name),
                    ("le", le),
                    ("job", &((i / 4).to_string())),
                ]),
                _ => Labels::from_pairs([("__name__", name), ("l", &l), ("g", &g)]),
            }
            .unwrap();
            let mut samples = Vec::new();
            let mut v = 0.0;
            for k in 0..160i64 {
                // Series start and stop at different times, some have gaps.
                if k < i * 3 || (i % 5 == 1 && (60..90).contains(&k)) {
                    continue;
                }
                if i % 4 == 2 && k == 100 {
                    samples.push(Sample::new(k * 15_000 + i * 700, STALE_NAN));
                    continue;
                }
                v += (1 + (i * k) % 7) as f64 * if name == "load" { 0.37 } else { 1.0 };
                if name == "req_total" && i % 3 == 0 && k % 50 == 49 {
                    v = 1.0; // counter reset
                }
                if name == "load" && k % 9 == 4 {
                    v -= 3.1;
                }
                samples.push(Sample::new(k * 15_000 + i * 700, v));
            }
            s.add(labels, &samples);
        }
    }
    s
}

const QUERIES: &[&str] = &[
    "req_total",
    "load offset 2m",
    "load @ 600",
    "rate(req_total[1m])",
    "rate(load[5m])",
    "increase(req_total[2m] offset 1m)",
    "irate(req_total[1m])",
    "delta(load[3m])",
    "deriv(load[3m])",
    "predict_linear(load[5m], 60)",
    "max_over_time(load[2m])",
    "last_over_time(load[1m])",
    "quantile_over_time(0.3, load[4m])",
    "quantile_over_time(2, load[4m])",
    "double_exponential_smoothing(load[4m], 0.5, 0.5)",
    "resets(req_total[10m])",
    "sum(req_total)",
    "sum by (g) (rate(req_total[1m]))",
    "avg without (l) (load)",
    "count by (g) (load > 20)",
    "stddev by (g) (load)",
    "min(load) + max(load)",
    "group by (g) (req_total)",
    "sum(sum by (g) (load))",
    "quantile by (g) (0.5, load)",
    "topk(3, load)",
    "topk by (g) (2, load)",
    "bottomk(4, req_total > 50)",
    "topk(2, load > 1e9)",
    "topk(3, -(load > 30) * 0)",
    "sum(topk(3, load))",
    "topk(0, load)",
    "topk(2.7, rate(req_total[1m]))",
    "bottomk by (g) (2, rate(req_total[2m]))",
    "histogram_quantile(0.9, rate(h_bucket[2m]))",
    "histogram_quantile(0.5, sum by (le) (rate(h_bucket[2m])))",
    "histogram_quantile(0.5, load)",
    "histogram_quantile(1.5, h_bucket > 40)",
    "sum(histogram_quantile(0.5, h_bucket))",
    "req_total + load",
    "req_total - on(l) load",
    "req_total / ignoring(g) load",
    "load > on(l, g) req_total",
    "load > bool on(l, g) req_total",
    "req_total / on(g) group_left(l) sum by (g) (load)",
    "sum by (g) (load) / on(g) group_right load",
    "req_total * 2",
    "100 - load",
    "load > 30",
    "2 < bool load",
    "-load",
    "abs(load - 40)",
    "label_replace(rate(req_total[1m]), \"x\", \"$1\", \"l\", \"(.*)\")",
    "max_over_time(rate(req_total[1m])[5m:1m])",
    "avg_over_time(sum by (g) (load)[3m:30s] offset 1m)",
    "rate(sum by (g) (req_total)[5m:])",
    "max_over_time(topk(2, load)[2m:30s])",
    "req_total and load",
    "load unless on(g) req_total",
    "load + on(g) req_total",
    "sum by (g) (load) + on() group_left vector(1)",
    "timestamp(load)",
    "absent(nonexistent)",
    "scalar(sum(load)) * load",
];

fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

#[tokio::test]
async fn range_queries_equal_their_instant_steps() {
    let s = store();
    let e = Engine::default();
    let (start, end, step) = (300_000, 2_300_000, 20_000);
    for q in QUERIES {
        let range = e.range_query(&s, q, start, end, step).await;
        let mut any_error = false;
        let mut t = start;
        while t <= end {
            let inst = e.instant_query(&s, q, t).await;
            let Ok(inst) = inst else {
                any_error = true;
                t += step;
                continue;
            };
            let Ok(range) = &range else {
                t += step;
                continue;
            };
            let Value::Matrix(m) = &range.value else {
                panic!("{q}: range query gave {}", range.value.type_name());
            };
            let mut got: Vec<(String, f64)> = m
                .iter()
                .filter_map(|s| {
                    let p = s.samples.iter().find(|p| p.t == t)?;
                    Some((s.labels.to_string(), p.v))
                })
                .collect();
            let mut want: Vec<(String, f64)> = match inst.value {
                Value::Vector(v) => v.into_iter().map(|s| (s.labels.to_string(), s.v)).collect(),
                Value::Scalar { v, .. } => vec![("{}".to_string(), v)],
                other => panic!("{q}: instant query gave {}", other.type_name()),
            };
            got.sort_by(|a, b| a.0.cmp(&b.0));
            want.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(got.len(), want.len(), "{q} at {t}: {got:?} vs {want:?}");
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    g.0 == w.0 && same(g.1, w.1),
                    "{q} at {t}: {got:?} vs {want:?}"
                );
            }
            t += step;
        }
        if let Err(err) = &range {
            assert!(any_error, "{q}: range query failed ({err}), no step did");
        } else {
            assert!(!any_error, "{q}: a step failed, the range query did not");
        }
    }
}

#[tokio::test]
async fn range_annotations_match_the_steps() {
    let s = store();
    let e = Engine::default();
    for q in [
        "rate(load[5m])",
        "sum(increase(load[1m]))",
        "quantile_over_time(2, load[4m])",
        "rate(req_total[5m])",
        "histogram_quantile(0.5, load)",
        "histogram_quantile(0.9, h_bucket)",
    ] {
        let range = e
            .range_query(&s, q, 300_000, 900_000, 60_000)
            .await
            .unwrap();
        let inst = e.instant_query(&s, q, 600_000).await.unwrap();
        assert_eq!(range.infos, inst.infos, "{q}");
        assert_eq!(range.warnings, inst.warnings, "{q}");
    }
}
