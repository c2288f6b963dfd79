//! Targets: from a discovered target group and a job to the label set and
//! URL that is scraped, and the merge of scraped labels with target labels.
//!
//! The precedence is Prometheus's (`scrape/target.go`): a target's own
//! labels (`__address__` and what discovery attached), then the group's
//! labels where the target has none, then the job defaults where still
//! unset (`job`, `__scrape_interval__`, `__scrape_timeout__`,
//! `__metrics_path__`, `__scheme__`, `__param_<name>`), then
//! `relabel_configs`; afterwards `__meta_*` labels are dropped and
//! `instance` defaults to `__address__`. Labels starting with `__` stay on
//! the target (they make its URL) but never reach stored samples.

use std::collections::BTreeMap;
use std::fmt;

use tidemark_config::Duration;
use tidemark_model::{Labels, TenantId, labels_hash};

use crate::config::ScrapeConfig;
use crate::error::ScrapeError;
use crate::relabel::{LabelSetBuilder, Relabeler, process};

pub const ADDRESS_LABEL: &str = "__address__";
pub const SCHEME_LABEL: &str = "__scheme__";
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
pub const PARAM_LABEL_PREFIX: &str = "__param_";
pub const META_LABEL_PREFIX: &str = "__meta_";
pub const JOB_LABEL: &str = "job";
pub const INSTANCE_LABEL: &str = "instance";

/// A group of targets with shared labels, as discovery produces it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetGroup {
    /// Where the group came from (e.g. `static/0`, a file name).
    pub source: String,
    /// Per-target label sets; each has at least `__address__`.
    pub targets: Vec<BTreeMap<String, String>>,
    pub labels: BTreeMap<String, String>,
}

impl TargetGroup {
    /// A group of plain addresses, as `static_configs` gives.
    pub fn from_static(
        source: String,
        targets: &[String],
        labels: &BTreeMap<String, String>,
    ) -> Self {
        TargetGroup {
            source,
            targets: targets
                .iter()
                .map(|a| BTreeMap::from([(ADDRESS_LABEL.to_string(), a.clone())]))
                .collect(),
            labels: labels.clone(),
        }
    }
}

/// A target ready to scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Every label after relabeling, `__`-prefixed ones included.
    all: Vec<(String, String)>,
    /// The labels stored with samples (no `__` prefix), sorted.
    labels: Labels,
    /// The labels discovery produced, before relabeling (`__meta_*`
    /// included), shown as `discoveredLabels` on `/api/v1/targets`.
    discovered: Labels,
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub tenant: Option<TenantId>,
}

impl Target {
    /// The labels before relabeling, as discovery produced them.
    pub fn discovered_labels(&self) -> &Labels {
        &self.discovered
    }

    /// The public labels attached to every sample of this target.
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// A label of the target, internal ones included.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.all
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A stable identity: hash of the public labels and the URL. Used for
    /// the scrape offset and for sharding targets over scrapers.
    pub fn hash(&self) -> u64 {
        labels_hash(&self.labels) ^ xxhash_rust::xxh3::xxh3_64(self.url.as_bytes())
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.url)
    }
}

/// Prometheus's duration spelling (`model.Duration.String`): `1m`, `1m30s`,
/// `1d`, `1w`, `0s`; used for `__scrape_interval__`/`__scrape_timeout__`.
pub fn prometheus_duration(d: Duration) -> String {
    let mut ms = d.as_millis_i64().max(0) as u128;
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("y", 365 * 86_400_000u128),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// Parses a duration from a relabeled `__scrape_interval__` label, in
/// Prometheus's units (`ms`, `s`, `m`, `h`, `d`, `w`, `y`, combined).
fn parse_prometheus_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::default());
    }
    let mut total: u128 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: u128 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit_ms, len) = if rest.starts_with("ms") {
            (1, 2)
        } else {
            let u = match rest.as_bytes()[0] {
                b's' => 1_000,
                b'm' => 60_000,
                b'h' => 3_600_000,
                b'd' => 86_400_000,
                b'w' => 7 * 86_400_000,
                b'y' => 365 * 86_400_000,
                _ => return None,
            };
            (u, 1)
        };
        total = total.checked_add(n.checked_mul(unit_ms)?)?;
        rest = &rest[len..];
    }
    Some(Duration::from_millis(u64::try_from(total).ok()?))
}

/// Outcome of building one discovered target.
#[derive(Debug, Clone, PartialEq)]
pub enum Built {
    Target(Target),
    /// `relabel_configs` dropped it; the labels before relabeling are kept
    /// for the targets page.
    Dropped(Labels),
}

/// Builds the target for one discovered label set of `group` under `job`,
/// with `relabel` being the job's compiled `relabel_configs`.
pub fn build_target(
    job: &ScrapeConfig,
    relabel: &[Relabeler],
    target_labels: &BTreeMap<String, String>,
    group_labels: &BTreeMap<String, String>,
) -> Result<Built, ScrapeError> {
    let mut lb = LabelSetBuilder::new();
    for (n, v) in target_labels {
        lb.set(n, v);
    }
    for (n, v) in group_labels {
        if lb.get(n).is_empty() {
            lb.set(n, v);
        }
    }
    let defaults = [
        (JOB_LABEL, job.job_name.clone()),
        (SCRAPE_INTERVAL_LABEL, prometheus_duration(job.interval())),
        (SCRAPE_TIMEOUT_LABEL, prometheus_duration(job.timeout())),
        (METRICS_PATH_LABEL, job.metrics_path.clone()),
        (SCHEME_LABEL, job.scheme.clone()),
    ];
    for (n, v) in defaults {
        if lb.get(n).is_empty() {
            lb.set(n, &v);
        }
    }
    for (k, vs) in &job.params {
        let name = format!("{PARAM_LABEL_PREFIX}{k}");
        if let Some(first) = vs.first()
            && lb.get(&name).is_empty()
        {
            lb.set(&name, first);
        }
    }
    let pre = lb.labels();
    if !process(&mut lb, relabel) {
        return Ok(Built::Dropped(pre));
    }
    let bad = |message: String| ScrapeError::Target {
        job: job.job_name.clone(),
        labels: pre.to_string(),
        message,
    };
    let addr = lb.get(ADDRESS_LABEL).to_string();
    if addr.is_empty() {
        return Err(bad("no address".into()));
    }
    crate::config::sd::check_target_address(&addr).map_err(bad)?;
    let interval_s = lb.get(SCRAPE_INTERVAL_LABEL).to_string();
    let interval = parse_prometheus_duration(&interval_s)
        .ok_or_else(|| bad(format!("error parsing scrape interval {interval_s:?}")))?;
    if interval.is_zero() {
        return Err(bad("scrape interval cannot be 0".into()));
    }
    let timeout_s = lb.get(SCRAPE_TIMEOUT_LABEL).to_string();
    let timeout = parse_prometheus_duration(&timeout_s)
        .ok_or_else(|| bad(format!("error parsing scrape timeout {timeout_s:?}")))?;
    if timeout.is_zero() {
        return Err(bad("scrape timeout cannot be 0".into()));
    }
    if timeout > interval {
        return Err(bad(format!(
            "scrape timeout cannot be greater than scrape interval ({timeout_s:?} > {interval_s:?})"
        )));
    }
    lb.retain(|n| !n.starts_with(META_LABEL_PREFIX));
    if lb.get(INSTANCE_LABEL).is_empty() {
        lb.set(INSTANCE_LABEL, &addr);
    }
    let scheme = lb.get(SCHEME_LABEL).to_string();
    let path = lb.get(METRICS_PATH_LABEL).to_string();
    let mut query: Vec<(String, String)> = Vec::new();
    for (k, vs) in &job.params {
        // A relabeled `__param_<k>` replaces the first value.
        let first = lb.get(&format!("{PARAM_LABEL_PREFIX}{k}")).to_string();
        for (i, v) in vs.iter().enumerate() {
            query.push((
                k.clone(),
                if i == 0 && !first.is_empty() {
                    first.clone()
                } else {
                    v.clone()
                },
            ));
        }
    }
    for (n, v) in lb.iter() {
        if let Some(k) = n.strip_prefix(PARAM_LABEL_PREFIX)
            && !job.params.contains_key(k)
        {
            query.push((k.to_string(), v.to_string()));
        }
    }
    // Sorted by key, like Go's url.Values.Encode.
    query.sort_by(|a, b| a.0.cmp(&b.0));
    let mut url = format!("{scheme}://{addr}{path}");
    for (i, (k, v)) in query.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(&url_encode(k));
        url.push('=');
        url.push_str(&url_encode(v));
    }
    let mut public: Vec<(&str, &str)> = lb.iter().filter(|(n, _)| !n.starts_with("__")).collect();
    public.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let tenant = match &job.tenant {
        Some(t) => Some(TenantId::new(t).map_err(|e| bad(e.to_string()))?),
        None => None,
    };
    Ok(Built::Target(Target {
        labels: Labels::from_sorted_pairs(public),
        discovered: pre,
        all: lb
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        url,
        interval,
        timeout,
        tenant,
    }))
}

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Merges a scraped sample's labels with its target's labels, as
/// Prometheus's `mutateSampleLabels` does before metric relabeling.
///
/// With `honor_labels`, scraped labels win and target labels only fill
/// gaps. Without it, target labels win and a conflicting scraped label is
/// kept as `exported_<name>` (prefixed again until the name is free,
/// shortest names first).
pub fn merge_sample_labels(scraped: &mut LabelSetBuilder, target: &Labels, honor_labels: bool) {
    if honor_labels {
        for (n, v) in target.iter() {
            if scraped.get(n).is_empty() {
                scraped.set(n, v);
            }
        }
        return;
    }
    let mut conflicts: Vec<(String, String)> = Vec::new();
    for (n, v) in target.iter() {
        let existing = scraped.get(n);
        if !existing.is_empty() {
            conflicts.push((n.to_string(), existing.to_string()));
        }
        scraped.set(n, v);
    }
    conflicts.sort_by_key(|(n, _)| n.len());
    for (name, value) in conflicts {
        let mut new_name = name;
        loop {
            new_name = format!("exported_{new_name}");
            if scraped.get(&new_name).is_empty() {
                scraped.set(&new_name, &value);
                break;
            }
        }
    }
}

#[cfg(test)]
#[path = "target_tests.rs"]
mod tests;
