//! Reading back through the Prometheus HTTP API of a querier, and checking
//! that what a [`crate::remote_write::Load`] had acknowledged is there.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::remote_write::LoadReport;

/// A series' labels, sorted by name.
pub type Labels = Vec<(String, String)>;

/// The strings of a JSON array (anything else in it skipped), collected
/// into `C`; empty when `v` is not an array.
pub fn strings<C: FromIterator<String>>(v: &Value) -> C {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

/// `GET base + path` with query parameters (repeated keys allowed) and the
/// tenant header; the status and the JSON body.
pub fn get(base: &str, tenant: Option<&str>, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let mut req = reqwest::blocking::Client::new()
        .get(format!("{base}{path}"))
        .query(params);
    if let Some(t) = tenant {
        req = req.header("X-Scope-OrgID", t);
    }
    match req.send() {
        Ok(r) => {
            let status = r.status().as_u16();
            let text = r.text().unwrap_or_default();
            let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
            (status, body)
        }
        Err(e) => (0, Value::String(e.to_string())),
    }
}

/// Seconds with milliseconds, as the API takes timestamps.
pub fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// The labels of a result's `metric` object, sorted.
pub fn labels_of(metric: &Value) -> Labels {
    let mut l: Labels = metric
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    l.sort();
    l
}

/// A `"matrix"` result as series -> `(timestamp ms, value)`; `None` when the
/// answer is not a successful matrix.
pub fn matrix(body: &Value) -> Option<BTreeMap<Labels, Vec<(i64, f64)>>> {
    if body["status"] != "success" || body["data"]["resultType"] != "matrix" {
        return None;
    }
    let mut out = BTreeMap::new();
    for r in body["data"]["result"].as_array()? {
        let samples = r["values"]
            .as_array()?
            .iter()
            .map(|p| {
                let t = p[0].as_f64()?;
                let v: f64 = p[1].as_str()?.parse().ok()?;
                Some(((t * 1000.0).round() as i64, v))
            })
            .collect::<Option<Vec<_>>>()?;
        out.insert(labels_of(&r["metric"]), samples);
    }
    Some(out)
}

/// Every raw sample of `metric` in the time range of `report`, read with
/// one instant query of a range selector through the querier at `base`.
pub fn read_back(
    base: &str,
    report: &LoadReport,
) -> Result<BTreeMap<Labels, Vec<(i64, f64)>>, String> {
    let Some((min, max)) = report.time_range() else {
        return Ok(BTreeMap::new());
    };
    // The range selector covers (max - range, max]; one second of margin.
    let range_s = (max - min) / 1000 + 2;
    let q = format!("{}[{range_s}s]", report.spec.metric);
    let (status, body) = get(
        base,
        report.spec.tenant.as_deref(),
        "/api/v1/query",
        &[("query", &q), ("time", &secs(max))],
    );
    matrix(&body).ok_or_else(|| format!("{q}: HTTP {status}: {body}"))
}

/// Acknowledged samples absent from `got` (or with another value), each
/// as `series @ timestamp`; empty when nothing acknowledged was lost.
pub fn missing(report: &LoadReport, got: &BTreeMap<Labels, Vec<(i64, f64)>>) -> Vec<String> {
    let mut out = Vec::new();
    for (labels, acked) in report.expected() {
        let have: BTreeMap<i64, f64> = got
            .get(&labels)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        for (t, v) in acked {
            if have.get(&t) != Some(&v) {
                out.push(format!("{labels:?} @ {t} = {v} (have {:?})", have.get(&t)));
            }
        }
    }
    out
}
