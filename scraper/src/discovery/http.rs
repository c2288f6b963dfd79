//! `http_sd_configs`: target groups fetched from an HTTP endpoint.
//!
//! As in Prometheus, the endpoint answers `200` with
//! `Content-Type: application/json` and a list of
//! `{"targets": [...], "labels": {...}}` groups; every group gets the
//! `__meta_url` label. A failed fetch keeps the previous groups (the
//! caller simply does not replace them) and is reported.

use std::time::Duration;

use crate::ScrapeError;
use crate::config::sd::{HttpSdConfig, check_target_address};
use crate::scrape::{AuthConfig, Fetcher};
use crate::target::TargetGroup;

use super::FileGroup;

/// How long one fetch of a discovery endpoint may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest discovery document accepted.
const BODY_LIMIT: u64 = 64 << 20;

/// Fetches the current target groups of `cfg` for `job`.
pub async fn fetch_http_sd(
    fetcher: &Fetcher,
    job: &str,
    cfg: &HttpSdConfig,
) -> Result<Vec<TargetGroup>, ScrapeError> {
    let err = |message: String| ScrapeError::Discovery {
        job: job.to_string(),
        origin: cfg.url.clone(),
        message,
    };
    let auth = AuthConfig::from_http_client(&cfg.http_client());
    let fetched = fetcher
        .fetch(
            &cfg.url,
            "application/json",
            FETCH_TIMEOUT,
            true,
            BODY_LIMIT,
            &auth,
        )
        .await
        .map_err(|e| err(e.to_string()))?;
    let ct = fetched.content_type.as_deref().unwrap_or("");
    if !ct
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    {
        return Err(err(format!(
            "unsupported content type {ct:?}, expected application/json"
        )));
    }
    parse_groups(&fetched.body, &cfg.url).map_err(err)
}

/// Parses an http_sd document fetched from `url`.
pub fn parse_groups(body: &[u8], url: &str) -> Result<Vec<TargetGroup>, String> {
    let groups: Vec<FileGroup> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(groups.len());
    for (i, g) in groups.into_iter().enumerate() {
        for t in &g.targets {
            check_target_address(t).map_err(|m| format!("group {i}: {m}"))?;
        }
        if let Some(n) = g
            .labels
            .keys()
            .find(|n| !tidemark_model::is_valid_label_name(n))
        {
            return Err(format!("group {i}: {n:?} is not a valid label name"));
        }
        let mut labels = g.labels;
        labels.insert("__meta_url".to_string(), url.to_string());
        out.push(TargetGroup::from_static(
            format!("{url}:{i}"),
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

    #[test]
    fn groups_get_the_url_label_and_bad_ones_are_refused() {
        let g = parse_groups(
            br#"[{"targets": ["a:1", "b:2"], "labels": {"env": "x"}}, {"targets": ["c:3"]}]"#,
            "http://sd/t",
        )
        .unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].targets.len(), 2);
        assert_eq!(g[0].labels["env"], "x");
        assert_eq!(g[1].labels["__meta_url"], "http://sd/t");
        let e = parse_groups(br#"[{"targets": ["a:1"], "labels": {"0x": "y"}}]"#, "u").unwrap_err();
        assert!(e.contains("0x"), "{e}");
        let e = parse_groups(br#"{"targets": []}"#, "u").unwrap_err();
        assert!(e.contains("sequence"), "{e}");
    }
}
