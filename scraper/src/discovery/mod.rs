//! Target discovery: `static_configs`, `file_sd_configs` files,
//! `http_sd_configs` endpoints ([`http`]) and the Kubernetes API
//! ([`kubernetes`]).
//!
//! File discovery reads JSON (`.json`) or YAML (`.yml`, `.yaml`) files of
//! target groups, the format Prometheus documents:
//! `[{"targets": ["host:port", ...], "labels": {"name": "value"}}]`. A `*`
//! in the last path component matches any file name. Each group gets the
//! `__meta_filepath` label. Files are read when a config is applied and on
//! every [`crate::scrape::ScrapeManager::refresh_discovery`] (driven by the
//! `refresh_interval`) and whenever [`file_sd_fingerprint`] changes (the
//! scraper service polls it every second: a file written, renamed into
//! place or removed is picked up within about a second); a file that cannot
//! be read or parsed is reported and contributes no targets.

pub mod http;
pub mod kubernetes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ScrapeError;
use crate::config::sd::{FileSdConfig, check_target_address};
use crate::config::{PrometheusConfig, ScrapeConfig};
use crate::target::TargetGroup;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileGroup {
    #[serde(default)]
    pub(crate) targets: Vec<String>,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
}

/// The target groups of one job from every source that runs today, plus the
/// errors of sources that failed.
pub fn job_target_groups(job: &ScrapeConfig) -> (Vec<TargetGroup>, Vec<ScrapeError>) {
    let mut groups: Vec<TargetGroup> = job
        .static_configs
        .iter()
        .enumerate()
        .map(|(i, sc)| TargetGroup::from_static(format!("static/{i}"), &sc.targets, &sc.labels))
        .collect();
    let mut errors = Vec::new();
    for cfg in &job.file_sd_configs {
        for path in expand_patterns(cfg) {
            match read_file(&path) {
                Ok(g) => groups.extend(g),
                Err(message) => errors.push(ScrapeError::Discovery {
                    job: job.job_name.clone(),
                    origin: path.display().to_string(),
                    message,
                }),
            }
        }
    }
    (groups, errors)
}

/// A fingerprint of every file_sd file of `cfg` (names, sizes, modification
/// times): when it changes, the files must be read again.
pub fn file_sd_fingerprint(cfg: &PrometheusConfig) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for job in &cfg.scrape_configs {
        for sd in &job.file_sd_configs {
            for path in expand_patterns(sd) {
                h.update(path.as_os_str().as_encoded_bytes());
                if let Ok(m) = std::fs::metadata(&path) {
                    h.update(&m.len().to_le_bytes());
                    let mtime = m
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_nanos());
                    h.update(&mtime.to_le_bytes());
                }
            }
        }
    }
    h.digest()
}

/// The files a `file_sd_configs` entry names, patterns expanded, sorted.
pub fn expand_patterns(cfg: &FileSdConfig) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for pattern in &cfg.files {
        let p = Path::new(pattern);
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Some((prefix, suffix)) = name.split_once('*') else {
            out.push(p.to_path_buf());
            continue;
        };
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let fname = e.file_name();
            let Some(f) = fname.to_str() else { continue };
            if f.len() >= prefix.len() + suffix.len()
                && f.starts_with(prefix)
                && f.ends_with(suffix)
            {
                out.push(dir.join(f));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn read_file(path: &Path) -> Result<Vec<TargetGroup>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let is_json = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let groups: Vec<FileGroup> = if is_json {
        serde_json::from_str(&text).map_err(|e| e.to_string())?
    } else {
        serde_yaml::from_str(&text).map_err(|e| e.to_string())?
    };
    let display = path.display().to_string();
    let mut out = Vec::with_capacity(groups.len());
    for (i, g) in groups.into_iter().enumerate() {
        for t in &g.targets {
            check_target_address(t).map_err(|m| format!("group {i}: {m}"))?;
        }
        for n in g.labels.keys() {
            if !tidemark_model::is_valid_label_name(n) {
                return Err(format!("group {i}: {n:?} is not a valid label name"));
            }
        }
        let mut labels = g.labels;
        labels.insert("__meta_filepath".to_string(), display.clone());
        out.push(TargetGroup::from_static(
            format!("file:{display}:{i}"),
            &g.targets,
            &labels,
        ));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::PrometheusConfig;

    #[test]
    fn reads_json_and_yaml_groups_with_patterns() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            r#"[{"targets": ["h1:9100", "h2:9100"], "labels": {"env": "prod"}}]"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("b.yml"), "- targets: ['h3:9100']\n").unwrap();
        std::fs::write(dir.path().join("bad.json"), "[{\"targets\": [\"x/y\"]}]").unwrap();
        std::fs::write(dir.path().join("ignored.txt"), "nope").unwrap();
        let yaml = format!(
            "scrape_configs:\n  - job_name: f\n    static_configs:\n      - targets: ['s:1']\n    file_sd_configs:\n      - files: ['{0}/*.json', '{0}/b.yml']\n",
            dir.path().display()
        );
        let cfg = PrometheusConfig::from_yaml(&yaml).unwrap();
        let (groups, errors) = job_target_groups(&cfg.scrape_configs[0]);
        let targets: Vec<String> = groups
            .iter()
            .flat_map(|g| g.targets.iter().map(|t| t["__address__"].clone()))
            .collect();
        assert_eq!(targets, vec!["s:1", "h1:9100", "h2:9100", "h3:9100"]);
        assert_eq!(groups[1].labels["env"], "prod");
        assert!(groups[1].labels["__meta_filepath"].ends_with("a.json"));
        assert_eq!(errors.len(), 1);
        let e = errors[0].to_string();
        assert!(
            e.contains("bad.json") && e.contains("not a valid hostname"),
            "{e}"
        );
    }
}
