//! Request parameters: form decoding, timestamps, durations, limits and
//! series selectors, with Prometheus's parsing rules and error wording.

use axum::body::Body;
use axum::extract::Request;
use http::{HeaderMap, Method, header};
use promql_parser::label::{MatchOp as PMatchOp, Matcher as PMatcher};
use promql_parser::parser::{Expr, VectorSelector};
use tidemark_model::{MatchOp, Matcher};
use tidemark_promql::Engine;

use crate::QuerierError;

/// Largest form body accepted, like Go's default for `ParseForm` (10 MiB).
const MAX_FORM_BYTES: usize = 10 << 20;

/// Prometheus's `MinTime` in ms: the default `start` of metadata endpoints.
pub(crate) const MIN_TIME_MS: i64 = -9_223_309_901_257_974_000;
/// Prometheus's `MaxTime` in ms: the default `end` of metadata endpoints.
pub(crate) const MAX_TIME_MS: i64 = 9_223_309_901_257_974_999;
/// How Prometheus (and Grafana) spell `MinTime` and `MaxTime` in RFC 3339.
const MIN_TIME_TEXT: &str = "-292273086-05-16T16:47:06Z";
const MAX_TIME_TEXT: &str = "292277025-08-18T07:12:54.999999999Z";

/// The parameters of one API request: the URL query plus, for a POST with
/// `application/x-www-form-urlencoded`, the body. Like Go's `FormValue`,
/// body values come first.
#[derive(Debug, Default)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Splits a request into its headers and parameters.
    pub(crate) async fn read(req: Request) -> Result<(HeaderMap, Params), QuerierError> {
        let (parts, body) = req.into_parts();
        let mut pairs = Vec::new();
        let is_form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if is_form && matches!(parts.method, Method::POST | Method::PUT | Method::PATCH) {
            let bytes = axum::body::to_bytes(Body::new(body), MAX_FORM_BYTES)
                .await
                .map_err(|e| QuerierError::BadData(format!("error parsing form body: {e}")))?;
            pairs.extend(form_urlencoded::parse(&bytes).into_owned());
        }
        if let Some(q) = parts.uri.query() {
            pairs.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        Ok((parts.headers, Params { pairs }))
    }

    #[cfg(test)]
    pub(crate) fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Params {
            pairs: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The first value of `name`, or "" (Go's `FormValue`).
    pub(crate) fn get(&self, name: &str) -> &str {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name` (e.g. `match[]`).
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A required timestamp.
    pub(crate) fn time(&self, name: &str) -> Result<i64, QuerierError> {
        parse_time(self.get(name)).map_err(|e| QuerierError::param(name, e))
    }

    /// A timestamp with a default when absent.
    pub(crate) fn time_or(&self, name: &str, default: i64) -> Result<i64, QuerierError> {
        match self.get(name) {
            "" => Ok(default),
            _ => self.time(name),
        }
    }

    /// An optional duration, ms.
    pub(crate) fn duration_opt(&self, name: &str) -> Result<Option<i64>, QuerierError> {
        match self.get(name) {
            "" => Ok(None),
            s => parse_duration(s)
                .map(Some)
                .map_err(|e| QuerierError::param(name, e)),
        }
    }

    /// `limit`: 0 when absent, which means no limit.
    pub(crate) fn limit(&self) -> Result<usize, QuerierError> {
        let s = self.get("limit");
        if s.is_empty() {
            return Ok(0);
        }
        let n: i64 = s.parse().map_err(|_| {
            QuerierError::param(
                "limit",
                format!("strconv.Atoi: parsing {s:?}: invalid syntax"),
            )
        })?;
        usize::try_from(n).map_err(|_| QuerierError::param("limit", "limit must be non-negative"))
    }

    /// The `match[]` selectors, each a set of matchers (a selector with
    /// `or` gives one set per alternative).
    pub(crate) fn matcher_sets(&self) -> Result<Vec<Vec<Matcher>>, QuerierError> {
        let mut sets = Vec::new();
        for s in self.all("match[]") {
            sets.extend(parse_selector(s).map_err(|e| QuerierError::param("match[]", e))?);
        }
        Ok(sets)
    }
}

/// Prometheus's `parseTime`: Unix seconds (fractions kept to the ms), RFC
/// 3339, or its spellings of the minimum and maximum times. Returns ms.
pub(crate) fn parse_time(s: &str) -> Result<i64, String> {
    let err = || format!("cannot parse {s:?} to a valid timestamp");
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() || s.to_ascii_lowercase().contains("inf") {
            return Err(err());
        }
        let secs = f.trunc();
        let frac = ((f - secs) * 1000.0).round();
        let ms = secs * 1000.0 + frac;
        if ms >= i64::MAX as f64 || ms <= i64::MIN as f64 {
            return Err(err());
        }
        return Ok(ms as i64);
    }
    match s {
        MIN_TIME_TEXT => return Ok(MIN_TIME_MS),
        MAX_TIME_TEXT => return Ok(MAX_TIME_MS),
        _ => {}
    }
    super::time::parse_rfc3339_ms(s).ok_or_else(err)
}

/// Prometheus's `parseDuration`: float seconds, or a Prometheus duration
/// (`1h30m`, `15s`, `100ms`, `1d`, `1w`, `1y`). Returns ms.
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        if f.is_nan() || s.to_ascii_lowercase().contains("inf") {
            return Err(format!("cannot parse {s:?} to a valid duration"));
        }
        let ns = f * 1e9;
        if ns >= i64::MAX as f64 || ns <= i64::MIN as f64 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok((ns as i64) / 1_000_000);
    }
    parse_prometheus_duration(s).ok_or_else(|| format!("cannot parse {s:?} to a valid duration"))
}

/// `[0-9]+(y|w|d|h|m|s|ms)` units in decreasing order, each at most once.
fn parse_prometheus_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let mut rest = s;
    let mut total: i64 = 0;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        // "ms" must be tried before "m".
        let (idx, unit) = UNITS
            .iter()
            .enumerate()
            .filter(|(_, (u, _))| rest.starts_with(u))
            .max_by_key(|(_, (u, _))| u.len())?;
        if idx < next_unit {
            return None;
        }
        next_unit = idx + 1;
        rest = &rest[unit.0.len()..];
        total = total.checked_add(n.checked_mul(unit.1)?)?;
    }
    Some(total)
}

/// Parses a series selector (`up{job="x"}`, `{__name__=~"a|b"}`) into
/// matcher sets, with Prometheus's rule that it must be a plain selector.
pub(crate) fn parse_selector(s: &str) -> Result<Vec<Vec<Matcher>>, String> {
    let expr = Engine::parse(s).map_err(|e| e.to_string())?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!(
            "1:1: parse error: expected a series selector such as up{{job=\"api\"}}, got {s:?}"
        ));
    };
    if vs.offset.is_some() || vs.at.is_some() {
        return Err("1:1: parse error: a series selector must not have offset or @".into());
    }
    selector_matcher_sets(&vs)
}

/// The matcher sets of one selector: one set, or one per `or` alternative,
/// each with the metric name as a matcher when the selector names it.
pub(crate) fn selector_matcher_sets(vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>, String> {
    let convert = |ms: &[PMatcher]| -> Result<Vec<Matcher>, String> {
        let mut out = Vec::with_capacity(ms.len() + 1);
        if let Some(name) = &vs.name
            && !ms
                .iter()
                .any(|m| m.name == tidemark_model::METRIC_NAME && m.value == *name)
        {
            out.push(Matcher::equal(tidemark_model::METRIC_NAME, name.clone()));
        }
        for m in ms {
            let op = match m.op {
                PMatchOp::Equal => MatchOp::Equal,
                PMatchOp::NotEqual => MatchOp::NotEqual,
                PMatchOp::Re(_) => MatchOp::Regex,
                PMatchOp::NotRe(_) => MatchOp::NotRegex,
            };
            out.push(Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| e.to_string())?);
        }
        Ok(out)
    };
    if vs.matchers.or_matchers.is_empty() {
        Ok(vec![convert(&vs.matchers.matchers)?])
    } else {
        vs.matchers
            .or_matchers
            .iter()
            .map(|alt| convert(alt))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_both_forms() {
        assert_eq!(parse_time("1435781451.781"), Ok(1_435_781_451_781));
        assert_eq!(parse_time("1435781451"), Ok(1_435_781_451_000));
        assert_eq!(parse_time("1.0006"), Ok(1_001));
        assert_eq!(parse_time("-1.5"), Ok(-1_500));
        assert_eq!(
            parse_time("2015-07-01T20:10:51.781Z"),
            Ok(1_435_781_451_781)
        );
        assert_eq!(
            parse_time("2015-07-01T22:10:51+02:00"),
            Ok(1_435_781_451_000)
        );
        assert_eq!(parse_time(MIN_TIME_TEXT), Ok(MIN_TIME_MS));
        assert_eq!(parse_time(MAX_TIME_TEXT), Ok(MAX_TIME_MS));
        assert_eq!(
            parse_time("abc").unwrap_err(),
            "cannot parse \"abc\" to a valid timestamp"
        );
        assert!(parse_time("").is_err());
        assert!(parse_time("Inf").is_err());
    }

    #[test]
    fn durations_as_seconds_or_prometheus_units() {
        assert_eq!(parse_duration("15"), Ok(15_000));
        assert_eq!(parse_duration("0.5"), Ok(500));
        assert_eq!(parse_duration("15s"), Ok(15_000));
        assert_eq!(parse_duration("1m"), Ok(60_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("100ms"), Ok(100));
        assert_eq!(parse_duration("1d"), Ok(86_400_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(
            parse_duration("1x").unwrap_err(),
            "cannot parse \"1x\" to a valid duration"
        );
        assert!(parse_duration("30m1h").is_err(), "units out of order");
        assert!(parse_duration("").is_err());
        assert!(
            parse_duration("1e300")
                .unwrap_err()
                .contains("overflows int64")
        );
    }

    #[test]
    fn selectors_become_matcher_sets() {
        let sets = parse_selector(r#"up{job="api",i=~"a.*"}"#).unwrap();
        assert_eq!(sets.len(), 1);
        let text: Vec<String> = sets[0].iter().map(|m| m.to_string()).collect();
        assert_eq!(
            text,
            vec![r#"__name__="up""#, r#"job="api""#, r#"i=~"a.*""#]
        );
        assert!(parse_selector("rate(up[5m])").is_err());
        assert!(parse_selector("up{").is_err());
    }

    #[test]
    fn limit_parameter() {
        assert_eq!(Params::from_pairs(&[]).limit().unwrap(), 0);
        assert_eq!(Params::from_pairs(&[("limit", "5")]).limit().unwrap(), 5);
        let e = Params::from_pairs(&[("limit", "-1")]).limit().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid parameter \"limit\": limit must be non-negative"
        );
    }
}
