//! Executes parsed test files against tidemark's engine and keeps the score.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use tidemark_model::{Labels, Sample};
use tidemark_promql::memstore::MemStore;
use tidemark_promql::{Engine, EngineOpts, QueryResult, Value, VectorSample};

use super::atmod::{AtCases, at_cases};
use super::compare::{check_annotations, check_failure, compare_value, compare_vector};
use super::script::{Command, Eval, EvalKind};
use super::selectors::selects_any;
use super::series::SeqValue;

/// Upper bound on one query's wall time before it is counted as failed.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Counts of one file (or the total).
#[derive(Debug, Default, Clone)]
pub(crate) struct Stats {
    pub(crate) evals: usize,
    pub(crate) passed: usize,
    pub(crate) failed: usize,
    pub(crate) skipped: usize,
    pub(crate) at_attempted: usize,
    pub(crate) at_passed: usize,
    pub(crate) range_attempted: usize,
    pub(crate) range_passed: usize,
    /// Evals whose every check (primary, `@` re-runs, range re-runs) passed:
    /// what upstream's own runner would call a pass.
    pub(crate) strict_passed: usize,
    /// Extra checks upstream would run that the runner could not build.
    pub(crate) extra_not_generated: usize,
}

impl Stats {
    pub(crate) fn add(&mut self, o: &Stats) {
        self.evals += o.evals;
        self.passed += o.passed;
        self.failed += o.failed;
        self.skipped += o.skipped;
        self.at_attempted += o.at_attempted;
        self.at_passed += o.at_passed;
        self.range_attempted += o.range_attempted;
        self.range_passed += o.range_passed;
        self.strict_passed += o.strict_passed;
        self.extra_not_generated += o.extra_not_generated;
    }

    /// Every attempted check: evals plus extra checks.
    pub(crate) fn attempted(&self) -> usize {
        self.evals + self.at_attempted + self.range_attempted
    }

    pub(crate) fn all_passed(&self) -> usize {
        self.passed + self.at_passed + self.range_passed
    }
}

/// One failed check, for the report.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) line: usize,
    /// `eval`, `@ re-run` or `range re-run`.
    pub(crate) check: &'static str,
    pub(crate) query: String,
    pub(crate) at: String,
    pub(crate) message: String,
}

/// The outcome of one file.
#[derive(Debug, Default)]
pub(crate) struct FileReport {
    pub(crate) stats: Stats,
    pub(crate) skip_reasons: BTreeMap<String, usize>,
    /// Extra checks not generated, by reason.
    pub(crate) extra_skip_reasons: BTreeMap<String, usize>,
    pub(crate) failures: Vec<Failure>,
    pub(crate) notes: Vec<String>,
}

/// Why a query did not return a result.
enum QueryError {
    /// The engine returned an error (the message a user would see).
    Engine(String),
    /// The engine panicked or ran past the runner's timeout.
    Crash(String),
}

/// The data loaded so far in a file and what it contains.
#[derive(Default)]
struct Segment {
    store: MemStore,
    native_histograms: bool,
    histogram_series: Vec<Labels>,
    start_timestamps: bool,
    load_error: Option<String>,
}

pub(crate) struct Runner {
    engine: Engine,
    rt: tokio::runtime::Runtime,
    query_context: Regex,
}

impl Runner {
    pub(crate) fn new() -> std::io::Result<Self> {
        let opts = EngineOpts {
            timeout: Duration::from_secs(100),
            ..EngineOpts::default()
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        Ok(Runner {
            engine: Engine::new(opts),
            rt,
            query_context: Regex::new(r"(start|end|range|step)\(\)").expect("constant regex"),
        })
    }

    pub(crate) fn run_file(&self, commands: &[Command]) -> FileReport {
        let mut rep = FileReport::default();
        let mut seg = Segment::default();
        let mut store = Arc::new(MemStore::new());
        for cmd in commands {
            match cmd {
                Command::Clear => {
                    seg = Segment::default();
                    store = Arc::new(MemStore::new());
                }
                Command::Load(load) => {
                    seg.native_histograms |= load.native_histograms;
                    seg.histogram_series
                        .extend(load.histogram_series.iter().cloned());
                    seg.start_timestamps |= load.start_timestamps;
                    if let Some(e) = &load.error {
                        seg.load_error
                            .get_or_insert(format!("line {}: {e}", load.line));
                    }
                    for (labels, values) in &load.series {
                        let samples: Vec<Sample> = values
                            .iter()
                            .enumerate()
                            .filter_map(|(i, v)| match v {
                                SeqValue::Value(f) => {
                                    Some(Sample::new(i as i64 * load.interval_ms, *f))
                                }
                                SeqValue::Omitted => None,
                            })
                            .collect();
                        seg.store.add(labels.clone(), &samples);
                    }
                    store = Arc::new(seg.store.clone());
                }
                Command::Invalid { line, reason } => {
                    rep.notes.push(format!("line {line}: {reason} (ignored)"));
                }
                Command::Eval(ev) => {
                    if let Some(reason) = skip_reason(ev, &seg) {
                        rep.stats.skipped += 1;
                        *rep.skip_reasons.entry(reason).or_default() += 1;
                        continue;
                    }
                    self.run_eval(ev, &store, &mut rep);
                }
            }
        }
        rep
    }

    fn run_eval(&self, ev: &Eval, store: &Arc<MemStore>, rep: &mut FileReport) {
        rep.stats.evals += 1;
        let mut all_ok = true;
        let fail = |rep: &mut FileReport,
                    check: &'static str,
                    query: &str,
                    at: String,
                    message: String| {
            rep.failures.push(Failure {
                line: ev.line,
                check,
                query: query.to_string(),
                at,
                message,
            });
        };
        let Some(t) = ev.instant_time() else {
            let EvalKind::Range { start, end, step } = ev.kind else {
                return;
            };
            match self.check_range_eval(ev, store, start, end, step) {
                Ok(()) => {
                    rep.stats.passed += 1;
                    rep.stats.strict_passed += 1;
                }
                Err(m) => {
                    rep.stats.failed += 1;
                    fail(
                        rep,
                        "eval",
                        &ev.expr,
                        format!("range {start}..{end} step {step}"),
                        m,
                    );
                }
            }
            return;
        };

        // The eval itself.
        match self.check_instant(ev, store, &ev.expr, t) {
            Ok(()) => rep.stats.passed += 1,
            Err(m) => {
                rep.stats.failed += 1;
                all_ok = false;
                fail(rep, "eval", &ev.expr, format!("t={t}"), m);
            }
        }
        let mut queries = vec![(ev.expr.clone(), t)];
        // Upstream's @ re-runs.
        match at_cases(&ev.expr, t) {
            AtCases::Cases(cases) => {
                for (q, et) in cases {
                    rep.stats.at_attempted += 1;
                    match self.check_instant(ev, store, &q, et) {
                        Ok(()) => rep.stats.at_passed += 1,
                        Err(m) => {
                            all_ok = false;
                            fail(rep, "@ re-run", &q, format!("t={et}"), m);
                        }
                    }
                    queries.push((q, et));
                }
            }
            AtCases::Unsafe => {}
            AtCases::NotGenerated { count, reason } => {
                // Upstream would run these (and their range re-runs); the
                // runner cannot build them, so they are reported, not scored.
                let mut n = count;
                if self.range_check_applies(ev, &ev.expr) {
                    n += count;
                }
                rep.stats.extra_not_generated += n;
                *rep.extra_skip_reasons.entry(category(&reason)).or_default() += n;
            }
        }
        // Upstream's range-mode re-runs of every instant query above.
        for (q, et) in &queries {
            if !self.range_check_applies(ev, q) {
                continue;
            }
            rep.stats.range_attempted += 1;
            match self.check_range_mode(ev, store, q, *et) {
                Ok(()) => rep.stats.range_passed += 1,
                Err(m) => {
                    all_ok = false;
                    fail(
                        rep,
                        "range re-run",
                        q,
                        format!("{}..{} step 60000", et - 60_000, et + 60_000),
                        m,
                    );
                }
            }
        }
        if all_ok {
            rep.stats.strict_passed += 1;
        }
    }

    fn range_check_applies(&self, ev: &Eval, query: &str) -> bool {
        // The original text is checked too: `@`-pinned queries have their
        // duration expressions (`step()`, `range()`) already resolved.
        !ev.fail
            && !ev.excluded_from_range_check()
            && !self.query_context.is_match(query)
            && !self.query_context.is_match(&ev.expr)
    }

    fn query(
        &self,
        store: &Arc<MemStore>,
        expr: &str,
        range: Option<(i64, i64, i64)>,
        t: i64,
    ) -> Result<QueryResult, QueryError> {
        let engine = self.engine.clone();
        let store = Arc::clone(store);
        let expr = expr.to_string();
        let task = self.rt.spawn(async move {
            match range {
                None => engine.instant_query(store.as_ref(), &expr, t).await,
                Some((s, e, st)) => engine.range_query(store.as_ref(), &expr, s, e, st).await,
            }
        });
        let joined = self
            .rt
            .block_on(async { tokio::time::timeout(QUERY_TIMEOUT, task).await });
        match joined {
            Err(_) => Err(QueryError::Crash(format!(
                "query did not finish within {QUERY_TIMEOUT:?}"
            ))),
            Ok(Err(join)) => Err(QueryError::Crash(format!(
                "engine panicked: {}",
                panic_message(join)
            ))),
            Ok(Ok(Err(e))) => Err(QueryError::Engine(e.to_string())),
            Ok(Ok(Ok(r))) => Ok(r),
        }
    }

    fn check_instant(
        &self,
        ev: &Eval,
        store: &Arc<MemStore>,
        expr: &str,
        t: i64,
    ) -> Result<(), String> {
        let res = self.query(store, expr, None, t);
        check_result(ev, res)
    }

    fn check_range_eval(
        &self,
        ev: &Eval,
        store: &Arc<MemStore>,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<(), String> {
        let res = self.query(store, &ev.expr, Some((start, end, step)), start);
        check_result(ev, res)
    }

    /// Runs `expr` as a range query from t-1m to t+1m at 1m and compares
    /// the middle step with the expectation (annotations are not checked).
    fn check_range_mode(
        &self,
        ev: &Eval,
        store: &Arc<MemStore>,
        expr: &str,
        t: i64,
    ) -> Result<(), String> {
        let res = match self.query(store, expr, Some((t - 60_000, t + 60_000, 60_000)), t) {
            Ok(r) => r,
            Err(QueryError::Engine(e)) => return Err(format!("error in range mode: {e}")),
            Err(QueryError::Crash(e)) => return Err(e),
        };
        if ev.ordered {
            return Ok(());
        }
        let Value::Matrix(m) = &res.value else {
            return Err(format!(
                "range query returned a {}, not a matrix",
                res.value.type_name()
            ));
        };
        for w in m.windows(2) {
            if w[0].labels > w[1].labels {
                return Err(format!(
                    "matrix not sorted by labels: {} before {}",
                    w[0].labels, w[1].labels
                ));
            }
        }
        let vec: Vec<VectorSample> = m
            .iter()
            .filter_map(|s| {
                s.samples.iter().find(|p| p.t == t).map(|p| VectorSample {
                    labels: s.labels.clone(),
                    t: p.t,
                    v: p.v,
                })
            })
            .collect();
        if ev.expect_scalar.is_some() {
            let Some(first) = vec.first() else {
                return Err("range mode returned no point at the eval time for a scalar".into());
            };
            return compare_value(ev, &Value::Scalar { t, v: first.v })
                .map_err(|e| format!("range mode: {e}"));
        }
        compare_vector(ev, &vec).map_err(|e| format!("range mode: {e}"))
    }
}

fn check_result(ev: &Eval, res: Result<QueryResult, QueryError>) -> Result<(), String> {
    match res {
        Err(QueryError::Crash(m)) => Err(m),
        Err(QueryError::Engine(e)) => {
            if ev.fail {
                check_failure(ev, &e)
            } else {
                Err(format!("error evaluating query: {e}"))
            }
        }
        Ok(r) => {
            if ev.fail {
                return Err(format!(
                    "expected an error but got none (result: {})",
                    short(&r.value)
                ));
            }
            check_annotations(ev, &r)?;
            compare_value(ev, &r.value)
        }
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 200 {
        format!("{}...", &s[..s.floor_char_boundary(200)])
    } else {
        s
    }
}

fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "non-string panic".into()),
        Err(e) => e.to_string(),
    }
}

/// Why an eval cannot be run meaningfully, if so.
fn skip_reason(ev: &Eval, seg: &Segment) -> Option<String> {
    if let Some(e) = &ev.parse_error {
        return Some(format!(
            "runner: eval block not understood ({})",
            category(e)
        ));
    }
    if seg.load_error.is_some() {
        return Some("runner: load block not understood".into());
    }
    if ev.expects_histograms {
        return Some("native histograms not supported: histogram in expected result".into());
    }
    if seg.native_histograms {
        match selects_any(&ev.expr, &seg.histogram_series) {
            Some(false) => {}
            Some(true) => {
                return Some(
                    "native histograms not supported: query reads histogram series".into(),
                );
            }
            None => {
                return Some(
                    "native histograms not supported: histogram data loaded, query not analysable"
                        .into(),
                );
            }
        }
    }
    if seg.start_timestamps {
        return Some("start timestamps (@st load lines) not supported".into());
    }
    None
}

/// A message with numbers and quoted parts removed, for grouping.
pub(crate) fn category(msg: &str) -> String {
    let mut out = String::new();
    let mut in_quote = false;
    for c in msg.chars() {
        if c == '"' {
            in_quote = !in_quote;
            if in_quote {
                out.push_str("\"…\"");
            }
            continue;
        }
        if in_quote {
            continue;
        }
        if c.is_ascii_digit() {
            if !out.ends_with('N') {
                out.push('N');
            }
            continue;
        }
        out.push(c);
    }
    let out: String = out.chars().take(90).collect();
    out
}
