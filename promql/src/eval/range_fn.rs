//! The table of range-vector functions: resolved from the function name
//! once per call node, so the step-by-step and the series-by-series
//! evaluation apply the same kernels and neither matches names or builds
//! closures per step.

use tidemark_model::Sample;

use crate::functions::range;

/// A range-vector function (`rate(v[r])`, `max_over_time(v[r])`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeFn {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Deriv,
    PredictLinear,
    Changes,
    Resets,
    AvgOverTime,
    SumOverTime,
    CountOverTime,
    MinOverTime,
    MaxOverTime,
    LastOverTime,
    FirstOverTime,
    PresentOverTime,
    StddevOverTime,
    StdvarOverTime,
    MadOverTime,
    TsOfMinOverTime,
    TsOfMaxOverTime,
    TsOfLastOverTime,
    TsOfFirstOverTime,
    QuantileOverTime,
    DoubleExponentialSmoothing,
}

/// What a kernel needs besides the window: where the window lies, the
/// evaluation time and the function's scalar arguments.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KernelArgs {
    /// Window start (exclusive) and end (inclusive), ms.
    pub(crate) start: i64,
    pub(crate) end: i64,
    /// Evaluation time, ms (`predict_linear` fits relative to it).
    pub(crate) ts: i64,
    /// The scalar arguments in order (NaN when absent).
    pub(crate) p0: f64,
    pub(crate) p1: f64,
}

impl RangeFn {
    pub(crate) fn by_name(name: &str) -> Option<RangeFn> {
        use RangeFn::*;
        Some(match name {
            "rate" => Rate,
            "increase" => Increase,
            "delta" => Delta,
            "irate" => Irate,
            "idelta" => Idelta,
            "deriv" => Deriv,
            "predict_linear" => PredictLinear,
            "changes" => Changes,
            "resets" => Resets,
            "avg_over_time" => AvgOverTime,
            "sum_over_time" => SumOverTime,
            "count_over_time" => CountOverTime,
            "min_over_time" => MinOverTime,
            "max_over_time" => MaxOverTime,
            "last_over_time" => LastOverTime,
            "first_over_time" => FirstOverTime,
            "present_over_time" => PresentOverTime,
            "stddev_over_time" => StddevOverTime,
            "stdvar_over_time" => StdvarOverTime,
            "mad_over_time" => MadOverTime,
            "ts_of_min_over_time" => TsOfMinOverTime,
            "ts_of_max_over_time" => TsOfMaxOverTime,
            "ts_of_last_over_time" => TsOfLastOverTime,
            "ts_of_first_over_time" => TsOfFirstOverTime,
            "quantile_over_time" => QuantileOverTime,
            "double_exponential_smoothing" => DoubleExponentialSmoothing,
            _ => return None,
        })
    }

    /// Whether the result keeps the metric name (the value is still one
    /// of the series' own samples).
    pub(crate) fn keeps_name(self) -> bool {
        matches!(self, RangeFn::LastOverTime | RangeFn::FirstOverTime)
    }

    /// Whether Prometheus notes that the input might not be a counter.
    pub(crate) fn wants_counter(self) -> bool {
        matches!(self, RangeFn::Rate | RangeFn::Increase)
    }

    /// Applies the function to one window. `may_reset` is false when the
    /// caller knows no sample of the window is below its predecessor, which
    /// lets `rate` and `increase` skip their scan for counter resets (the
    /// result is the same: a reset-free window adds no correction).
    pub(crate) fn apply(self, w: &[Sample], a: &KernelArgs, may_reset: bool) -> Option<f64> {
        use RangeFn::*;
        match self {
            Rate => range::extrapolated_rate_scan(w, a.start, a.end, true, may_reset, true),
            Increase => range::extrapolated_rate_scan(w, a.start, a.end, true, may_reset, false),
            Delta => range::delta(w, a.start, a.end),
            Irate => range::irate(w),
            Idelta => range::idelta(w),
            Deriv => range::deriv(w),
            PredictLinear => range::predict_linear(w, a.ts, a.p0),
            Changes => range::changes(w),
            Resets => range::resets(w),
            AvgOverTime => range::avg_over_time(w),
            SumOverTime => range::sum_over_time(w),
            CountOverTime => range::count_over_time(w),
            MinOverTime => range::min_over_time(w),
            MaxOverTime => range::max_over_time(w),
            LastOverTime => range::last_over_time(w),
            FirstOverTime => range::first_over_time(w),
            PresentOverTime => range::present_over_time(w),
            StddevOverTime => range::stddev_over_time(w),
            StdvarOverTime => range::stdvar_over_time(w),
            MadOverTime => range::mad_over_time(w),
            TsOfMinOverTime => range::ts_of_min_over_time(w),
            TsOfMaxOverTime => range::ts_of_max_over_time(w),
            TsOfLastOverTime => range::ts_of_last_over_time(w),
            TsOfFirstOverTime => range::ts_of_first_over_time(w),
            QuantileOverTime => range::quantile_over_time(a.p0, w),
            DoubleExponentialSmoothing => range::double_exponential_smoothing(w, a.p0, a.p1),
        }
    }
}

/// Whether a metric name looks like a counter's, for the "might not be a
/// counter" info of `rate` and `increase`.
pub(crate) fn counter_like(name: &str) -> bool {
    ["_total", "_sum", "_count", "_bucket"]
        .iter()
        .any(|suf| name.ends_with(suf))
}
