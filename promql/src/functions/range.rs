//! Range-vector functions over one series' window (`rate`, `*_over_time`, ...).
//!
//! Every function takes the float samples of one series inside the window
//! `(range_start, range_end]`, sorted by time, with staleness markers already
//! removed by the engine, and returns `None` when Prometheus would produce no
//! output element for the series. The arithmetic follows Prometheus 3.x
//! (`promql/functions.go`) operation for operation, so results agree within
//! floating-point rounding and usually exactly.

use tidemark_model::Sample;

use super::stats::{KahanSum, kahan_inc, quantile, variance};

/// `rate(v[r])`: per-second increase of a counter, extrapolated to the window
/// edges.
pub fn rate(samples: &[Sample], range_start: i64, range_end: i64) -> Option<f64> {
    extrapolated_rate(samples, range_start, range_end, true, true)
}

/// `increase(v[r])`: increase of a counter over the window, extrapolated.
pub fn increase(samples: &[Sample], range_start: i64, range_end: i64) -> Option<f64> {
    extrapolated_rate(samples, range_start, range_end, true, false)
}

/// `delta(v[r])`: difference of a gauge over the window, extrapolated.
pub fn delta(samples: &[Sample], range_start: i64, range_end: i64) -> Option<f64> {
    extrapolated_rate(samples, range_start, range_end, false, false)
}

/// The shared core of `rate`, `increase` and `delta`.
///
/// Needs at least two samples. Counter resets (a value lower than the
/// previous one) add the previous value back. The result is extrapolated
/// towards each window edge: all the way if the first/last sample is within
/// 1.1 average sample intervals of the edge, otherwise by half an interval.
/// For counters, extrapolation before the first sample stops where the
/// counter would reach zero.
pub fn extrapolated_rate(
    samples: &[Sample],
    range_start: i64,
    range_end: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    extrapolated_rate_scan(samples, range_start, range_end, is_counter, true, is_rate)
}

/// [`extrapolated_rate`] for callers that may know more: `may_reset` false
/// says no sample is below its predecessor, so the scan for counter resets
/// (the one step linear in the window) is skipped; it would add nothing.
pub fn extrapolated_rate_scan(
    samples: &[Sample],
    range_start: i64,
    range_end: i64,
    is_counter: bool,
    may_reset: bool,
    is_rate: bool,
) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let first = samples[0];
    let last = samples[samples.len() - 1];
    let mut result = last.v - first.v;
    if is_counter && may_reset {
        for w in samples.windows(2) {
            if w[1].v < w[0].v {
                result += w[0].v;
            }
        }
    }
    let mut duration_to_start = (first.t - range_start) as f64 / 1000.0;
    let mut duration_to_end = (range_end - last.t) as f64 / 1000.0;
    let sampled_interval = (last.t - first.t) as f64 / 1000.0;
    let average_interval = sampled_interval / (samples.len() - 1) as f64;
    let threshold = average_interval * 1.1;
    if duration_to_start >= threshold {
        duration_to_start = average_interval / 2.0;
    }
    if is_counter {
        let mut duration_to_zero = duration_to_start;
        if result > 0.0 && first.v >= 0.0 {
            duration_to_zero = sampled_interval * (first.v / result);
        }
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    if duration_to_end >= threshold {
        duration_to_end = average_interval / 2.0;
    }
    let mut factor = (sampled_interval + duration_to_start + duration_to_end) / sampled_interval;
    if is_rate {
        factor /= (range_end - range_start) as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `rate`/`increase`/`delta` over an `anchored` or `smoothed` range selector
/// (Prometheus's experimental extended range selectors).
///
/// Unlike the other functions here, `samples` may include samples outside
/// the window: for `anchored`, the last sample at or before `range_start`;
/// for `smoothed`, additionally the first sample after `range_end`. With
/// `smoothed`, the values at the window edges are interpolated between the
/// neighbouring samples; with `anchored`, the sample at or before the start
/// is used as is. No extrapolation happens.
pub fn extended_rate(
    samples: &[Sample],
    range_start: i64,
    range_end: i64,
    smoothed: bool,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let f = samples;
    let mut last_idx = f.len() - 1;
    // Index of the last sample at or before range_start (or 0).
    let first_after = f[..last_idx].partition_point(|s| s.t <= range_start);
    let mut first_idx = first_after.saturating_sub(1);
    if smoothed {
        last_idx = f[..last_idx].partition_point(|s| s.t < range_end);
    }
    if f[last_idx].t <= range_start {
        return None;
    }
    let left = if smoothed && f[first_idx].t < range_start && first_idx + 1 < f.len() {
        interpolate(f[first_idx], f[first_idx + 1], range_start, is_counter)
    } else {
        f[first_idx].v
    };
    let right = if smoothed && last_idx > 0 && f[last_idx].t > range_end {
        interpolate(f[last_idx - 1], f[last_idx], range_end, is_counter)
    } else {
        f[last_idx].v
    };
    let mut result = right - left;
    if is_counter {
        if f[first_idx].t <= range_start {
            first_idx += 1;
        }
        let mut end = last_idx as isize;
        if f[last_idx].t >= range_end {
            end -= 1;
        }
        let inner: &[Sample] = if end >= first_idx as isize {
            &f[first_idx..=end as usize]
        } else {
            &[]
        };
        let mut correction = 0.0;
        let mut prev = left;
        for p in inner {
            if p.v < prev {
                correction += prev;
            }
            prev = p.v;
        }
        if right < prev {
            correction += prev;
        }
        result += correction;
    }
    if is_rate {
        result /= (range_end - range_start) as f64 / 1000.0;
    }
    Some(result)
}

fn interpolate(p1: Sample, p2: Sample, t: i64, is_counter: bool) -> f64 {
    let mut y1 = p1.v;
    let y2 = p2.v;
    if is_counter && y2 < y1 {
        y1 = 0.0;
    }
    y1 + (y2 - y1) * (t - p1.t) as f64 / (p2.t - p1.t) as f64
}

/// `irate(v[r])`: per-second rate between the last two samples; a decrease
/// is a counter reset, so the rate is the last value over the interval.
pub fn irate(samples: &[Sample]) -> Option<f64> {
    instant_value(samples, true)
}

/// `idelta(v[r])`: difference between the last two samples.
pub fn idelta(samples: &[Sample]) -> Option<f64> {
    instant_value(samples, false)
}

fn instant_value(samples: &[Sample], is_rate: bool) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let prev = samples[samples.len() - 2];
    let last = samples[samples.len() - 1];
    let interval = last.t - prev.t;
    if interval == 0 {
        return None;
    }
    let mut v = last.v;
    if !is_rate || last.v >= prev.v || last.v.is_nan() || prev.v.is_nan() {
        v = last.v - prev.v;
    }
    if is_rate {
        v /= interval as f64 / 1000.0;
    }
    Some(v)
}

/// Least-squares fit of the samples against time in seconds relative to
/// `intercept_time`; returns `(slope, intercept)`. A constant series has
/// slope 0 (or NaN/NaN if the constant is infinite).
pub fn linear_regression(samples: &[Sample], intercept_time: i64) -> (f64, f64) {
    let n = samples.len() as f64;
    let (mut sum_x, mut c_x) = (0.0, 0.0);
    let (mut sum_y, mut c_y) = (0.0, 0.0);
    let (mut sum_xy, mut c_xy) = (0.0, 0.0);
    let (mut sum_x2, mut c_x2) = (0.0, 0.0);
    let init_y = samples.first().map_or(f64::NAN, |s| s.v);
    let mut const_y = true;
    for (i, s) in samples.iter().enumerate() {
        if const_y && i > 0 && s.v != init_y {
            const_y = false;
        }
        let x = (s.t - intercept_time) as f64 / 1e3;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(s.v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * s.v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// `deriv(v[r])`: per-second slope of the least-squares line. The fit is
/// made relative to the first sample's time to keep precision.
pub fn deriv(samples: &[Sample]) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    Some(linear_regression(samples, samples[0].t).0)
}

/// `predict_linear(v[r], t)`: the least-squares line's value `duration_s`
/// seconds after `eval_ts` (ms).
pub fn predict_linear(samples: &[Sample], eval_ts: i64, duration_s: f64) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let (slope, intercept) = linear_regression(samples, eval_ts);
    Some(slope * duration_s + intercept)
}

/// `changes(v[r])`: how often the value changed (NaN to NaN is no change).
pub fn changes(samples: &[Sample]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let n = samples
        .windows(2)
        .filter(|w| w[1].v != w[0].v && !(w[1].v.is_nan() && w[0].v.is_nan()))
        .count();
    Some(n as f64)
}

/// `resets(v[r])`: how often the value decreased (a counter reset).
pub fn resets(samples: &[Sample]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    Some(samples.windows(2).filter(|w| w[1].v < w[0].v).count() as f64)
}

/// `avg_over_time(v[r])`: the mean, summed with Kahan compensation, and
/// switching to an incremental mean only if the direct sum would overflow.
pub fn avg_over_time(samples: &[Sample]) -> Option<f64> {
    let (first, rest) = samples.split_first()?;
    let mut sum = first.v;
    let mut count = 1.0;
    let (mut mean, mut c) = (0.0, 0.0);
    let mut incremental = false;
    for (i, s) in rest.iter().enumerate() {
        count = (i + 2) as f64;
        if !incremental {
            let (new_sum, new_c) = kahan_inc(s.v, sum, c);
            if !new_sum.is_infinite() {
                (sum, c) = (new_sum, new_c);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(s.v / count, q * mean, q * c);
    }
    if incremental {
        Some(mean + c)
    } else {
        Some(sum / count + c / count)
    }
}

/// `sum_over_time(v[r])`, Kahan-compensated.
pub fn sum_over_time(samples: &[Sample]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut s = KahanSum::default();
    for p in samples {
        s.add(p.v);
    }
    Some(s.value())
}

/// `count_over_time(v[r])`.
pub fn count_over_time(samples: &[Sample]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    Some(samples.len() as f64)
}

/// `min_over_time(v[r])`: NaN only if every value is NaN.
pub fn min_over_time(samples: &[Sample]) -> Option<f64> {
    compare_over_time(samples, |cur, best| cur < best || best.is_nan()).map(|s| s.v)
}

/// `max_over_time(v[r])`: NaN only if every value is NaN.
pub fn max_over_time(samples: &[Sample]) -> Option<f64> {
    compare_over_time(samples, |cur, best| cur > best || best.is_nan()).map(|s| s.v)
}

/// `ts_of_min_over_time(v[r])`: time in seconds of the last minimum.
pub fn ts_of_min_over_time(samples: &[Sample]) -> Option<f64> {
    compare_over_time(samples, |cur, best| cur <= best || best.is_nan()).map(|s| secs(s.t))
}

/// `ts_of_max_over_time(v[r])`: time in seconds of the last maximum.
pub fn ts_of_max_over_time(samples: &[Sample]) -> Option<f64> {
    compare_over_time(samples, |cur, best| cur >= best || best.is_nan()).map(|s| secs(s.t))
}

fn compare_over_time(samples: &[Sample], better: impl Fn(f64, f64) -> bool) -> Option<Sample> {
    let mut best = *samples.first()?;
    for s in samples {
        if better(s.v, best.v) {
            best = *s;
        }
    }
    Some(best)
}

fn secs(t: i64) -> f64 {
    t as f64 / 1000.0
}

/// `last_over_time(v[r])`.
pub fn last_over_time(samples: &[Sample]) -> Option<f64> {
    samples.last().map(|s| s.v)
}

/// `first_over_time(v[r])`.
pub fn first_over_time(samples: &[Sample]) -> Option<f64> {
    samples.first().map(|s| s.v)
}

/// `ts_of_last_over_time(v[r])`: time in seconds of the last sample.
pub fn ts_of_last_over_time(samples: &[Sample]) -> Option<f64> {
    samples.last().map(|s| secs(s.t))
}

/// `ts_of_first_over_time(v[r])`: time in seconds of the first sample.
pub fn ts_of_first_over_time(samples: &[Sample]) -> Option<f64> {
    samples.first().map(|s| secs(s.t))
}

/// `present_over_time(v[r])`: 1 for any series with a sample in the window.
pub fn present_over_time(samples: &[Sample]) -> Option<f64> {
    (!samples.is_empty()).then_some(1.0)
}

/// `stdvar_over_time(v[r])`: population variance.
pub fn stdvar_over_time(samples: &[Sample]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    Some(variance(samples.iter().map(|s| s.v)))
}

/// `stddev_over_time(v[r])`: population standard deviation.
pub fn stddev_over_time(samples: &[Sample]) -> Option<f64> {
    stdvar_over_time(samples).map(f64::sqrt)
}

/// `quantile_over_time(q, v[r])`. The engine adds the invalid-quantile
/// warning for `q` outside [0, 1]; the value is then ±Inf (NaN for NaN).
pub fn quantile_over_time(q: f64, samples: &[Sample]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut values: Vec<f64> = samples.iter().map(|s| s.v).collect();
    Some(quantile(q, &mut values))
}

/// `mad_over_time(v[r])`: median absolute deviation from the median.
/// A NaN sample makes the result NaN (Prometheus 3.x), instead of being
/// sorted away as the plain quantile would.
pub fn mad_over_time(samples: &[Sample]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    if samples.iter().any(|s| s.v.is_nan()) {
        return Some(f64::NAN);
    }
    let mut values: Vec<f64> = samples.iter().map(|s| s.v).collect();
    let median = quantile(0.5, &mut values);
    for v in &mut values {
        *v = (*v - median).abs();
    }
    Some(quantile(0.5, &mut values))
}

/// `double_exponential_smoothing(v[r], sf, tf)` (formerly `holt_winters`).
///
/// Needs at least two samples. The engine must reject `sf` and `tf` outside
/// the open interval (0, 1) with Prometheus's error before calling this; see
/// [`smoothing_factor_error`].
pub fn double_exponential_smoothing(samples: &[Sample], sf: f64, tf: f64) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let (mut s0, mut s1) = (0.0, samples[0].v);
    let mut b = samples[1].v - samples[0].v;
    for (i, s) in samples.iter().enumerate().skip(1) {
        let x = sf * s.v;
        // The trend at step i-1; the very first step uses the raw delta.
        if i - 1 > 0 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        (s0, s1) = (s1, x + y);
    }
    Some(s1)
}

/// The error Prometheus raises for a smoothing or trend factor outside (0, 1),
/// or `None` if both are valid.
pub fn smoothing_factor_error(sf: f64, tf: f64) -> Option<String> {
    if sf.is_nan() || sf <= 0.0 || sf >= 1.0 {
        return Some(format!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {}",
            go_fmt_f(sf)
        ));
    }
    if tf.is_nan() || tf <= 0.0 || tf >= 1.0 {
        return Some(format!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {}",
            go_fmt_f(tf)
        ));
    }
    None
}

/// Go's `%f`: six decimals, `NaN`, `+Inf`, `-Inf`.
fn go_fmt_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v:.6}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn s(points: &[(i64, f64)]) -> Vec<Sample> {
        points.iter().map(|&(t, v)| Sample::new(t, v)).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn rate_of_a_regular_counter_extrapolates_to_the_window() {
        // 0,10,...,50 every 10s in (0s, 60s]: samples at 10..60.
        let v = s(&[
            (10_000, 10.0),
            (20_000, 20.0),
            (30_000, 30.0),
            (40_000, 40.0),
            (50_000, 50.0),
            (60_000, 60.0),
        ]);
        // result 50 over 50s sampled; start is 10s away (< 1.1*10s) so extrapolated,
        // but the counter would hit zero exactly at 0s: factor 60/50.
        let r = rate(&v, 0, 60_000).unwrap();
        assert!(close(r, 1.0), "{r}");
        let inc = increase(&v, 0, 60_000).unwrap();
        assert!(close(inc, 60.0), "{inc}");
    }

    #[test]
    fn counter_reset_adds_previous_value() {
        let v = s(&[(0, 5.0), (10_000, 10.0), (20_000, 2.0), (30_000, 6.0)]);
        // raw increase 6-5=1, plus reset correction 10 => 11, over 30s sampled,
        // window (0, 30s]: to-start 0 (< threshold), to-zero = 30*(5/11) > 0 so start stays 0.
        let inc = increase(&v, 0, 30_000).unwrap();
        assert!(close(inc, 11.0), "{inc}");
        assert_eq!(resets(&v), Some(1.0));
        assert_eq!(changes(&v), Some(3.0));
    }

    #[test]
    fn extrapolation_is_limited_to_half_an_interval_far_from_the_edge() {
        // Samples only in the middle of a 100s window.
        let v = s(&[(40_000, 100.0), (50_000, 110.0), (60_000, 120.0)]);
        // delta: 20 over 20s, each side extrapolated by 5s => 30.
        let d = delta(&v, 0, 100_000).unwrap();
        assert!(close(d, 30.0), "{d}");
        // increase: zero point is 20*(100/20)=100s away, farther than 5s, no clamp.
        assert!(close(increase(&v, 0, 100_000).unwrap(), 30.0));
    }

    #[test]
    fn counter_extrapolation_stops_at_zero() {
        // Starts at 1 and grows 10 per 10s; window start 10s before first sample.
        let v = s(&[(10_000, 1.0), (20_000, 11.0), (30_000, 21.0)]);
        // to-start 10s (< 11s threshold); to-zero = 20 * 1/20 = 1s -> use 1s.
        let inc = increase(&v, 0, 30_000).unwrap();
        assert!(close(inc, 20.0 * 21.0 / 20.0), "{inc}");
    }

    #[test]
    fn rate_needs_two_samples() {
        assert_eq!(rate(&s(&[(1000, 1.0)]), 0, 60_000), None);
        assert_eq!(irate(&s(&[(1000, 1.0)])), None);
    }

    #[test]
    fn irate_and_idelta_use_the_last_two_samples() {
        let v = s(&[(0, 1.0), (10_000, 5.0), (15_000, 7.0)]);
        assert_eq!(irate(&v), Some(2.0 / 5.0));
        assert_eq!(idelta(&v), Some(2.0));
        let reset = s(&[(0, 10.0), (5_000, 3.0)]);
        assert_eq!(irate(&reset), Some(3.0 / 5.0));
        assert_eq!(idelta(&reset), Some(-7.0));
    }

    #[test]
    fn deriv_and_predict_linear_fit_a_line() {
        let v = s(&[(0, 1.0), (10_000, 3.0), (20_000, 5.0)]);
        assert!(close(deriv(&v).unwrap(), 0.2));
        // At eval 20s the line is at 5; 10s later 7.
        assert!(close(predict_linear(&v, 20_000, 10.0).unwrap(), 7.0));
        let flat = s(&[(0, 4.0), (10_000, 4.0)]);
        assert_eq!(deriv(&flat), Some(0.0));
        assert_eq!(predict_linear(&flat, 0, 100.0), Some(4.0));
        let inf = s(&[(0, f64::INFINITY), (10_000, f64::INFINITY)]);
        assert!(deriv(&inf).unwrap().is_nan());
    }

    #[test]
    fn over_time_aggregations() {
        let v = s(&[
            (1000, 3.0),
            (2000, 1.0),
            (3000, 4.0),
            (4000, 1.0),
            (5000, 5.0),
        ]);
        assert_eq!(sum_over_time(&v), Some(14.0));
        assert_eq!(avg_over_time(&v), Some(2.8));
        assert_eq!(count_over_time(&v), Some(5.0));
        assert_eq!(min_over_time(&v), Some(1.0));
        assert_eq!(max_over_time(&v), Some(5.0));
        assert_eq!(first_over_time(&v), Some(3.0));
        assert_eq!(last_over_time(&v), Some(5.0));
        assert_eq!(ts_of_min_over_time(&v), Some(4.0)); // last of the equal minima
        assert_eq!(ts_of_max_over_time(&v), Some(5.0));
        assert_eq!(ts_of_first_over_time(&v), Some(1.0));
        assert_eq!(ts_of_last_over_time(&v), Some(5.0));
        assert_eq!(present_over_time(&v), Some(1.0));
        assert_eq!(quantile_over_time(0.5, &v), Some(3.0));
        // median 3; |dev| = 0,2,1,2,2 -> median 2
        assert_eq!(mad_over_time(&v), Some(2.0));
        let with_nan = s(&[(0, 1.0), (1, 2.0), (2, f64::NAN), (3, 4.0)]);
        assert!(mad_over_time(&with_nan).unwrap().is_nan());
        let var = stdvar_over_time(&v).unwrap();
        assert!(close(var, 2.56), "{var}");
        assert!(close(stddev_over_time(&v).unwrap(), 1.6));
        assert_eq!(sum_over_time(&[]), None);
        assert_eq!(present_over_time(&[]), None);
    }

    #[test]
    fn min_max_skip_nan_unless_all_nan() {
        let v = s(&[(1, f64::NAN), (2, 2.0), (3, f64::NAN)]);
        assert_eq!(min_over_time(&v), Some(2.0));
        assert_eq!(max_over_time(&v), Some(2.0));
        assert!(max_over_time(&s(&[(1, f64::NAN)])).unwrap().is_nan());
    }

    #[test]
    fn avg_over_time_survives_overflow_of_the_sum() {
        let v = s(&[(1, f64::MAX), (2, f64::MAX), (3, f64::MAX)]);
        let avg = avg_over_time(&v).unwrap();
        assert!(avg.is_finite() && close(avg, f64::MAX), "{avg}");
    }

    #[test]
    fn double_exponential_smoothing_of_a_line_follows_it() {
        // For a straight line the smoothed value at the end equals the last value.
        let v = s(&[(0, 0.0), (1000, 10.0), (2000, 20.0), (3000, 30.0)]);
        let r = double_exponential_smoothing(&v, 0.5, 0.5).unwrap();
        assert!(close(r, 30.0), "{r}");
        // Hand-computed: values 1, 3, 2 with sf=0.5, tf=0.5.
        // s1=1, b=2; i=1: b stays 2 (first step), s=0.5*3+0.5*(1+2)=3;
        // i=2: b=0.5*(3-1)+0.5*2=2, s=0.5*2+0.5*(3+2)=3.5
        let w = s(&[(0, 1.0), (1000, 3.0), (2000, 2.0)]);
        assert_eq!(double_exponential_smoothing(&w, 0.5, 0.5), Some(3.5));
        assert_eq!(double_exponential_smoothing(&w[..1], 0.5, 0.5), None);
        assert!(smoothing_factor_error(0.5, 0.5).is_none());
        assert_eq!(
            smoothing_factor_error(1.0, 0.5).as_deref(),
            Some("invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000")
        );
    }

    #[test]
    fn smoothed_rate_interpolates_at_the_edges() {
        // Samples at 0s=0 and 20s=20 around a window (5s, 15s]: edges 5 and 15.
        let v = s(&[(0, 0.0), (20_000, 20.0)]);
        let inc = extended_rate(&v, 5_000, 15_000, true, true, false).unwrap();
        assert!(close(inc, 10.0), "{inc}");
        let r = extended_rate(&v, 5_000, 15_000, true, true, true).unwrap();
        assert!(close(r, 1.0), "{r}");
        // Anchored: from the sample at/before the start to the last one in range.
        let a = s(&[(0, 1.0), (10_000, 4.0), (15_000, 6.0)]);
        assert_eq!(
            extended_rate(&a, 5_000, 15_000, false, false, false),
            Some(5.0)
        );
    }
}
