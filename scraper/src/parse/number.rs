//! Sample values and timestamps as Prometheus reads them.

/// The NaN Prometheus stores for a scraped NaN (`value.NormalNaN`). Every
/// scraped NaN is normalised to it, so a target can never inject the
/// staleness marker's bit pattern.
pub const NORMAL_NAN: f64 = f64::from_bits(0x7ff8_0000_0000_0001);

/// Parses a sample value the way Go's `strconv.ParseFloat` does (decimal
/// and exponent forms, `NaN`, `Inf`, `+Inf`, `-Inf` in any case), without
/// the hex and underscore forms Prometheus rejects. Values out of the f64
/// range are an error, as in Go.
pub(super) fn parse_value(s: &str) -> Result<f64, &'static str> {
    let v: f64 = s.parse().map_err(|_| "not a floating-point number")?;
    if v.is_infinite() && !s.bytes().any(|b| b == b'i' || b == b'I') {
        return Err("out of the float64 range");
    }
    Ok(if v.is_nan() { NORMAL_NAN } else { v })
}

/// A Prometheus text format timestamp: integer milliseconds.
pub(super) fn parse_millis(s: &str) -> Result<i64, &'static str> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected integer milliseconds");
    }
    s.parse().map_err(|_| "out of the int64 range")
}

/// An OpenMetrics timestamp: float seconds, converted to milliseconds
/// (rounded to the nearest millisecond, so `1.001` is 1001 and not 1000).
pub(super) fn parse_seconds(s: &str) -> Result<i64, &'static str> {
    let v = parse_value(s)?;
    if !v.is_finite() {
        return Err("timestamp must be finite");
    }
    let ms = (v * 1000.0).round();
    if ms < i64::MIN as f64 || ms > i64::MAX as f64 {
        return Err("out of the int64 millisecond range");
    }
    Ok(ms as i64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn values_like_go() {
        assert_eq!(parse_value("1"), Ok(1.0));
        assert_eq!(parse_value("-1.5e3"), Ok(-1500.0));
        assert_eq!(parse_value(".5"), Ok(0.5));
        assert_eq!(parse_value("+Inf"), Ok(f64::INFINITY));
        assert_eq!(parse_value("-Inf"), Ok(f64::NEG_INFINITY));
        assert_eq!(parse_value("inf"), Ok(f64::INFINITY));
        assert_eq!(
            parse_value("NaN").map(f64::to_bits),
            Ok(NORMAL_NAN.to_bits())
        );
        assert!(parse_value("1e400").is_err());
        assert!(parse_value("0x10").is_err());
        assert!(parse_value("1_000").is_err());
        assert!(parse_value("").is_err());
        assert!(parse_value("one").is_err());
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_millis("1395066363000"), Ok(1_395_066_363_000));
        assert!(parse_millis("-1").is_err());
        assert!(parse_millis("1.5").is_err());
        assert_eq!(parse_seconds("1520879607.789"), Ok(1_520_879_607_789));
        assert_eq!(parse_seconds("1.001"), Ok(1001));
        assert!(parse_seconds("NaN").is_err());
        assert!(parse_seconds("+Inf").is_err());
    }
}
