//! Numeric building blocks shared by aggregations and range functions:
//! compensated (Kahan–Neumaier) summation and the sample quantile.
//!
//! Prometheus sums with Neumaier's variant of Kahan summation and folds the
//! compensation in only at the end; results of `sum`, `avg`, `sum_over_time`
//! and friends match Prometheus's bit for bit only if the same order of
//! operations is used, so these helpers follow it exactly.

/// One step of Kahan–Neumaier summation: adds `inc` to `sum` whose running
/// compensation is `c`, returning the new `(sum, c)`.
///
/// The compensation is reset when the sum overflows to ±Inf, so an infinite
/// sum stays infinite instead of turning into NaN when `c` is added.
#[inline]
pub fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// A running compensated sum.
///
/// ```
/// # use tidemark_promql::functions::stats::KahanSum;
/// let mut s = KahanSum::default();
/// for v in [1e100, 1.0, -1e100] { s.add(v); }
/// assert_eq!(s.value(), 1.0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KahanSum {
    sum: f64,
    c: f64,
}

impl KahanSum {
    /// Starts a sum at `v` (no compensation yet).
    pub fn new(v: f64) -> Self {
        KahanSum { sum: v, c: 0.0 }
    }

    /// Adds one value.
    #[inline]
    pub fn add(&mut self, v: f64) {
        (self.sum, self.c) = kahan_inc(v, self.sum, self.c);
    }

    /// The uncompensated running sum (what overflow checks look at).
    pub fn raw(&self) -> f64 {
        self.sum
    }

    /// The running compensation term.
    pub fn compensation(&self) -> f64 {
        self.c
    }

    /// The compensated sum. An infinite running sum is returned as is.
    pub fn value(&self) -> f64 {
        if self.sum.is_infinite() {
            self.sum
        } else {
            self.sum + self.c
        }
    }
}

/// Compensated sum of a slice, as `sum_over_time` and `sum` compute it.
pub fn kahan_sum(values: &[f64]) -> f64 {
    let mut s = KahanSum::default();
    for &v in values {
        s.add(v);
    }
    s.value()
}

/// The `q`-quantile of `values` (which are sorted in place), interpolating
/// linearly between the two closest ranks, as the `quantile` aggregation and
/// `quantile_over_time` do.
///
/// Empty input or `q` NaN gives NaN; `q < 0` gives -Inf and `q > 1` +Inf.
/// NaN values sort first, as in Prometheus.
pub fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    sort_nan_first(values);
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Sorts ascending with NaNs first (Prometheus's `vectorByValueHeap` order).
pub fn sort_nan_first(values: &mut [f64]) {
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        (false, false) => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
}

/// Population variance with Welford's algorithm, both running terms kept
/// with Kahan compensation (Prometheus's `stdvar_over_time`, `stdvar`).
/// Returns NaN for empty input.
pub fn variance(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut count = 0.0;
    let (mut mean, mut c_mean) = (0.0, 0.0);
    let (mut aux, mut c_aux) = (0.0, 0.0);
    for v in values {
        count += 1.0;
        let delta = v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// Go's `math.Max`: +Inf wins over NaN, otherwise NaN propagates, and +0 is
/// greater than -0. Rust's `f64::max` ignores NaN, which would change results.
#[inline]
pub fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        return f64::INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && y == 0.0 {
        return if x.is_sign_negative() { y } else { x };
    }
    if x > y { x } else { y }
}

/// Go's `math.Min`: -Inf wins over NaN, otherwise NaN propagates, and -0 is
/// less than +0.
#[inline]
pub fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && y == 0.0 {
        return if x.is_sign_negative() { x } else { y };
    }
    if x < y { x } else { y }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn kahan_recovers_what_naive_summation_loses() {
        let vals = [1.0, 1e100, 1.0, -1e100];
        assert_eq!(vals.iter().sum::<f64>(), 0.0);
        assert_eq!(kahan_sum(&vals), 2.0);
    }

    #[test]
    fn kahan_keeps_infinity() {
        assert_eq!(kahan_sum(&[f64::MAX, f64::MAX, 1.0]), f64::INFINITY);
        assert!(kahan_sum(&[f64::INFINITY, f64::NEG_INFINITY]).is_nan());
    }

    #[test]
    fn quantile_interpolates_between_ranks() {
        let mut v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(0.5, &mut v), 2.5);
        assert_eq!(quantile(0.0, &mut v), 1.0);
        assert_eq!(quantile(1.0, &mut v), 4.0);
        // rank 0.75*3 = 2.25 -> 3 + 0.25*(4-3)
        assert_eq!(quantile(0.75, &mut v), 3.25);
    }

    #[test]
    fn quantile_edge_cases() {
        assert!(quantile(0.5, &mut []).is_nan());
        assert!(quantile(f64::NAN, &mut [1.0]).is_nan());
        assert_eq!(quantile(-0.1, &mut [1.0]), f64::NEG_INFINITY);
        assert_eq!(quantile(1.1, &mut [1.0]), f64::INFINITY);
        // NaN sorts first, so the median of [NaN, 1, 2] is 1.
        assert_eq!(quantile(0.5, &mut [2.0, f64::NAN, 1.0]), 1.0);
    }

    #[test]
    fn variance_matches_definition() {
        let v = variance([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert!((v - 4.0).abs() < 1e-12, "{v}");
        assert_eq!(variance([5.0]), 0.0);
        assert!(variance([]).is_nan());
    }

    #[test]
    fn go_min_max_nan_and_zero_rules() {
        assert!(go_max(1.0, f64::NAN).is_nan());
        assert_eq!(go_max(f64::INFINITY, f64::NAN), f64::INFINITY);
        assert_eq!(go_min(f64::NEG_INFINITY, f64::NAN), f64::NEG_INFINITY);
        assert!(go_max(-0.0, 0.0).is_sign_positive());
        assert!(go_min(0.0, -0.0).is_sign_negative());
        assert_eq!(go_min(1.0, 2.0), 1.0);
    }
}
