//! Calendar functions (`year`, `month`, `day_of_week`, ...) in UTC.
//!
//! The argument is a Unix time in seconds as a float; like Prometheus, the
//! fractional part is truncated towards zero before the date is computed.
//! Dates use the proleptic Gregorian calendar, so they are right for any
//! year, not only after 1970.

/// A UTC calendar date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CivilTime {
    pub year: i64,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    /// 0 = Sunday.
    pub weekday: u32,
    /// 1..=366
    pub day_of_year: u32,
}

/// Splits Unix seconds into a UTC date. NaN and values beyond the `i64`
/// range saturate the way Go's float-to-int conversion does on amd64
/// (to `i64::MIN`).
pub fn civil(unix_seconds: f64) -> CivilTime {
    const LIMIT: f64 = 9.223_372_036_854_776e18;
    let secs = if unix_seconds.is_nan() || !(-LIMIT..LIMIT).contains(&unix_seconds) {
        i64::MIN
    } else {
        unix_seconds.trunc() as i64
    };
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let weekday = (days + 4).rem_euclid(7) as u32; // 1970-01-01 was a Thursday
    let day_of_year = (days - days_from_civil(year, 1, 1) + 1) as u32;
    CivilTime {
        year,
        month,
        day,
        hour: (sod / 3600) as u32,
        minute: ((sod % 3600) / 60) as u32,
        weekday,
        day_of_year,
    }
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z as i128 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (y as i64, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = y as i128 - if m <= 2 { 1 } else { 0 };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i128;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i128 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) as i64
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// `year(v)`.
pub fn year(unix_seconds: f64) -> f64 {
    civil(unix_seconds).year as f64
}
/// `month(v)`: 1..=12.
pub fn month(unix_seconds: f64) -> f64 {
    civil(unix_seconds).month as f64
}
/// `day_of_month(v)`: 1..=31.
pub fn day_of_month(unix_seconds: f64) -> f64 {
    civil(unix_seconds).day as f64
}
/// `day_of_week(v)`: 0 (Sunday) ..= 6.
pub fn day_of_week(unix_seconds: f64) -> f64 {
    civil(unix_seconds).weekday as f64
}
/// `day_of_year(v)`: 1..=366.
pub fn day_of_year(unix_seconds: f64) -> f64 {
    civil(unix_seconds).day_of_year as f64
}
/// `hour(v)`: 0..=23.
pub fn hour(unix_seconds: f64) -> f64 {
    civil(unix_seconds).hour as f64
}
/// `minute(v)`: 0..=59.
pub fn minute(unix_seconds: f64) -> f64 {
    civil(unix_seconds).minute as f64
}
/// `days_in_month(v)`: 28..=31.
pub fn days_in_month(unix_seconds: f64) -> f64 {
    let c = civil(unix_seconds);
    let n = match c.month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(c.year) => 29,
        _ => 28,
    };
    n as f64
}

/// The calendar function with this PromQL name, for the engine's dispatch.
pub fn by_name(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "year" => year,
        "month" => month,
        "day_of_month" => day_of_month,
        "day_of_week" => day_of_week,
        "day_of_year" => day_of_year,
        "hour" => hour,
        "minute" => minute,
        "days_in_month" => days_in_month,
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn epoch_is_thursday_first_of_january_1970() {
        let c = civil(0.0);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute),
            (1970, 1, 1, 0, 0)
        );
        assert_eq!(c.weekday, 4);
        assert_eq!(c.day_of_year, 1);
    }

    #[test]
    fn known_dates() {
        // 2024-02-29T13:45:10Z = 1709214310
        let t = 1_709_214_310.9;
        assert_eq!(year(t), 2024.0);
        assert_eq!(month(t), 2.0);
        assert_eq!(day_of_month(t), 29.0);
        assert_eq!(hour(t), 13.0);
        assert_eq!(minute(t), 45.0);
        assert_eq!(day_of_week(t), 4.0);
        assert_eq!(day_of_year(t), 60.0);
        assert_eq!(days_in_month(t), 29.0);
        // 1969-12-31T23:59:59Z: before the epoch, truncation towards zero of -1.5 gives -1.
        assert_eq!(year(-1.5), 1969.0);
        assert_eq!(day_of_year(-1.0), 365.0);
        assert_eq!(hour(-1.0), 23.0);
        // 2100 is not a leap year.
        assert_eq!(days_in_month(4_105_900_800.0), 28.0); // 2100-02-10
    }
}
