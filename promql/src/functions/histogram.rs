//! `histogram_quantile` over classic histograms (one series per `le` bucket).
//!
//! The engine groups the bucket series of one histogram, parses their `le`
//! labels and passes `(upper_bound, cumulative_count)` pairs here. Native
//! histograms are not supported by tidemark yet.

/// Relative tolerance under which differences between adjacent bucket counts
/// are treated as floating-point noise and ignored (Prometheus's value).
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// The outcome of [`bucket_quantile`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketQuantile {
    /// The estimated quantile (NaN, ±Inf in the documented special cases).
    pub value: f64,
    /// Bucket counts decreased somewhere and were raised to keep them
    /// monotonic; the engine reports Prometheus's info annotation
    /// ("input to histogram_quantile needed to be fixed for monotonicity").
    pub forced_monotonic: bool,
    /// Tiny differences between counts were ignored as rounding noise.
    pub fixed_precision: bool,
}

/// Estimates the `q`-quantile from cumulative bucket counts, interpolating
/// linearly inside the bucket the rank falls into.
///
/// The buckets are sorted by upper bound here (callers need not sort), and
/// buckets with the same bound are merged. Special cases, as in Prometheus:
/// `q` NaN gives NaN, `q < 0` gives -Inf, `q > 1` gives +Inf; no `+Inf`
/// bucket, fewer than two buckets or zero observations give NaN. A rank in
/// the `+Inf` bucket returns the second-highest bound. The lowest bucket is
/// interpolated from 0 if its bound is positive; otherwise its bound is
/// returned.
pub fn bucket_quantile(q: f64, buckets: &mut [(f64, f64)]) -> BucketQuantile {
    let out = |value| BucketQuantile {
        value,
        forced_monotonic: false,
        fixed_precision: false,
    };
    if q.is_nan() {
        return out(f64::NAN);
    }
    if q < 0.0 {
        return out(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return out(f64::INFINITY);
    }
    if buckets.is_empty() {
        return out(f64::NAN);
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    if buckets[buckets.len() - 1].0 != f64::INFINITY {
        return out(f64::NAN);
    }
    let n = coalesce(buckets);
    let buckets = &mut buckets[..n];
    let (forced_monotonic, fixed_precision) = ensure_monotonic(buckets, SMALL_DELTA_TOLERANCE);
    if buckets.len() < 2 {
        return out(f64::NAN);
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return out(f64::NAN);
    }
    let mut rank = q * observations;
    let last = buckets.len() - 1;
    let b = buckets[..last].partition_point(|bk| bk.1 < rank);
    let value = if b == last {
        buckets[last - 1].0
    } else if b == 0 && buckets[0].0 <= 0.0 {
        buckets[0].0
    } else {
        let bucket_end = buckets[b].0;
        let mut count = buckets[b].1;
        let mut bucket_start = 0.0;
        if b > 0 {
            bucket_start = buckets[b - 1].0;
            count -= buckets[b - 1].1;
            rank -= buckets[b - 1].1;
        }
        bucket_start + (bucket_end - bucket_start) * (rank / count)
    };
    BucketQuantile {
        value,
        forced_monotonic,
        fixed_precision,
    }
}

/// `histogram_fraction(lower, upper, ...)` over classic buckets: the
/// estimated fraction of observations between `lower` and `upper`.
///
/// Buckets are `(upper_bound, cumulative_count)` in any order; they are
/// sorted, merged and made monotonic as for [`bucket_quantile`]. Inside a
/// finite bucket observations are assumed evenly spread; the lowest bucket
/// spans from 0 if its bound is positive. Observations in a bucket of
/// infinite width (the lowest one when its bound is not positive, and the
/// `+Inf` one) sit at its infinite end, so no interpolation happens there.
/// NaN for NaN bounds, no `+Inf` bucket or no observations; 0 when
/// `lower >= upper`.
pub fn bucket_fraction(lower: f64, upper: f64, buckets: &mut [(f64, f64)]) -> f64 {
    if buckets.is_empty() || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    if buckets[buckets.len() - 1].0 != f64::INFINITY {
        return f64::NAN;
    }
    let n = coalesce(buckets);
    let buckets = &mut buckets[..n];
    ensure_monotonic(buckets, SMALL_DELTA_TOLERANCE);
    let total = buckets[n - 1].1;
    if total == 0.0 || total.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    // Rank (number of observations) at or below `x`.
    let rank_at = |x: f64| -> f64 {
        let mut below = 0.0;
        for (i, &(ub, cum)) in buckets.iter().enumerate() {
            let count = cum - below;
            let lb = if i == 0 {
                if ub > 0.0 { 0.0 } else { f64::NEG_INFINITY }
            } else {
                buckets[i - 1].0
            };
            if x <= lb {
                return below;
            }
            if x < ub {
                if lb == f64::NEG_INFINITY {
                    return below + count; // all at -Inf, below x
                }
                if ub == f64::INFINITY {
                    return below; // all at +Inf, above x
                }
                return below + count * (x - lb) / (ub - lb);
            }
            below = cum;
        }
        below
    };
    let lo = if lower == f64::NEG_INFINITY {
        0.0
    } else {
        rank_at(lower).min(total)
    };
    let hi = if upper == f64::INFINITY {
        total
    } else {
        rank_at(upper).min(total)
    };
    (hi - lo) / total
}

/// [`bucket_quantile`]'s value alone.
pub fn histogram_quantile(q: f64, buckets: &mut [(f64, f64)]) -> f64 {
    bucket_quantile(q, buckets).value
}

/// Merges adjacent buckets with the same upper bound (e.g. `le="1"` and
/// `le="1.0"`), summing counts; returns the new length.
fn coalesce(buckets: &mut [(f64, f64)]) -> usize {
    let mut last = buckets[0];
    let mut i = 0;
    for j in 1..buckets.len() {
        let b = buckets[j];
        if b.0 == last.0 {
            last.1 += b.1;
        } else {
            buckets[i] = last;
            last = b;
            i += 1;
        }
    }
    buckets[i] = last;
    i + 1
}

/// Ignores differences below `tolerance` (relative) between successive
/// counts, then removes decreases by raising a count to the previous one.
fn ensure_monotonic(buckets: &mut [(f64, f64)], tolerance: f64) -> (bool, bool) {
    let (mut forced, mut fixed) = (false, false);
    let mut prev = buckets[0].1;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.1;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, tolerance) {
            b.1 = prev;
            fixed = true;
            continue;
        }
        if curr < prev {
            b.1 = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    (forced, fixed)
}

/// Prometheus's `almost.Equal`: relative comparison, NaN equal to NaN.
pub fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

/// Parses an `le` label value the way Prometheus does (Go's `ParseFloat`:
/// `+Inf`, `Inf`, `1e3`, `0x1p-2`, ...). `None` means malformed.
pub fn parse_le(s: &str) -> Option<f64> {
    if s.is_empty() || s.contains('_') || s.trim() != s {
        return None;
    }
    s.parse::<f64>().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn q(qv: f64, b: &[(f64, f64)]) -> f64 {
        histogram_quantile(qv, &mut b.to_vec())
    }

    const INF: f64 = f64::INFINITY;

    #[test]
    fn interpolates_inside_the_bucket() {
        // 10 observations: 2 <= 0.1, 6 <= 0.5, 10 <= +Inf... with a 1.0 bucket.
        let b = [(0.1, 2.0), (0.5, 6.0), (1.0, 8.0), (INF, 10.0)];
        // rank 5 falls in (0.1, 0.5]: 0.1 + 0.4 * (3/4)
        assert!((q(0.5, &b) - 0.4).abs() < 1e-12);
        // rank 1 falls in the lowest bucket, interpolated from 0.
        assert!((q(0.1, &b) - 0.05).abs() < 1e-12);
        // rank 9.9 falls in +Inf: the second-highest bound.
        assert_eq!(q(0.99, &b), 1.0);
    }

    #[test]
    fn unsorted_input_is_sorted() {
        let b = [(INF, 10.0), (0.5, 6.0), (0.1, 2.0), (1.0, 8.0)];
        assert!((q(0.5, &b) - 0.4).abs() < 1e-12);
    }

    #[test]
    fn special_cases() {
        let b = [(1.0, 1.0), (INF, 2.0)];
        assert!(q(f64::NAN, &b).is_nan());
        assert_eq!(q(-0.5, &b), f64::NEG_INFINITY);
        assert_eq!(q(1.5, &b), INF);
        assert!(q(0.5, &[(1.0, 1.0), (2.0, 2.0)]).is_nan(), "no +Inf bucket");
        assert!(q(0.5, &[(INF, 2.0)]).is_nan(), "a single bucket");
        assert!(
            q(0.5, &[(1.0, 0.0), (INF, 0.0)]).is_nan(),
            "no observations"
        );
        assert!(q(0.5, &[]).is_nan());
        // Lowest bucket with a non-positive bound returns the bound.
        assert_eq!(q(0.1, &[(-1.0, 5.0), (0.0, 8.0), (INF, 10.0)]), -1.0);
    }

    #[test]
    fn monotonicity_is_forced_and_reported() {
        // The nonmonotonic example of Prometheus's histograms.test at 50m:
        // counts 20, 10, 50, 40, 90, 80 for 0.1, 1, 10, 100, 1000, +Inf.
        let b = [
            (0.1, 20.0),
            (1.0, 10.0),
            (10.0, 50.0),
            (100.0, 40.0),
            (1000.0, 90.0),
            (INF, 80.0),
        ];
        let r = bucket_quantile(0.5, &mut b.to_vec());
        assert!(r.forced_monotonic);
        assert!((r.value - 8.5).abs() < 1e-9, "{}", r.value);
        assert!((q(0.01, &b) - 0.0045).abs() < 1e-12);
        assert!((q(0.99, &b) - 979.75).abs() < 1e-9);
    }

    #[test]
    fn duplicate_bounds_are_merged_and_noise_ignored() {
        let mut b = vec![(1.0, 1.0), (1.0, 1.0), (INF, 4.0)];
        assert!((histogram_quantile(0.25, &mut b) - 0.5).abs() < 1e-12);
        let r = bucket_quantile(0.5, &mut [(1.0, 3.0), (2.0, 3.0 - 1e-15), (INF, 4.0)]);
        assert!(r.fixed_precision && !r.forced_monotonic);
    }

    fn frac(lo: f64, hi: f64, b: &[(f64, f64)]) -> f64 {
        bucket_fraction(lo, hi, &mut b.to_vec())
    }

    #[test]
    fn fraction_interpolates_in_finite_buckets() {
        // Cases of Prometheus's histograms.test (classic and NHCB agree).
        let b = [
            (0.0, 0.0),
            (2.0, 10.0),
            (4.0, 20.0),
            (6.0, 30.0),
            (INF, 30.0),
        ];
        assert!((frac(0.0, 4.0, &b) - 2.0 / 3.0).abs() < 1e-12);
        assert!((frac(0.0, 6.0, &b) - 1.0).abs() < 1e-12);
        assert!((frac(0.0, 3.5, &b) - 0.5833333333333334).abs() < 1e-12);
        let pos = [(1.0, 1.0), (2.0, 3.0), (3.0, 6.0), (INF, 100.0)];
        assert!((frac(0.0, 1.5, &pos) - 0.02).abs() < 1e-12);
        assert!((frac(f64::NEG_INFINITY, INF, &pos) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn fraction_does_not_interpolate_in_infinite_buckets() {
        let neg = [(-3.0, 10.0), (-2.0, 12.0), (-1.0, 15.0), (INF, 100.0)];
        assert!((frac(-4.0, -2.0, &neg) - 0.02).abs() < 1e-12);
        assert!((frac(f64::NEG_INFINITY, -1.5, &neg) - 0.135).abs() < 1e-12);
        let pos = [(1.0, 1.0), (2.0, 3.0), (3.0, 6.0), (INF, 100.0)];
        assert_eq!(frac(4.0, 5.0, &pos), 0.0);
        assert_eq!(frac(2.0, 1.0, &pos), 0.0);
        assert!(frac(f64::NAN, 1.0, &pos).is_nan());
        assert!(frac(0.0, 1.0, &[(1.0, 1.0)]).is_nan());
    }

    #[test]
    fn le_parsing() {
        assert_eq!(parse_le("+Inf"), Some(INF));
        assert_eq!(parse_le("0.5"), Some(0.5));
        assert_eq!(parse_le("1e3"), Some(1000.0));
        assert_eq!(parse_le(""), None);
        assert_eq!(parse_le("Hello World"), None);
    }
}
