//! Element-wise math functions (`abs`, `round`, `clamp`, trigonometry, ...).
//!
//! Most map straight onto `f64` methods, whose results equal Go's `math`
//! package for these operations. The ones that differ from a naive Rust
//! version (NaN and signed-zero handling in `clamp` and `sgn`, the rounding
//! rule of `round`) are spelled out here so the engine cannot get them wrong.

use super::stats::{go_max, go_min};

/// `abs(v)`.
pub fn abs(v: f64) -> f64 {
    v.abs()
}
/// `ceil(v)`.
pub fn ceil(v: f64) -> f64 {
    v.ceil()
}
/// `floor(v)`.
pub fn floor(v: f64) -> f64 {
    v.floor()
}
/// `exp(v)`.
pub fn exp(v: f64) -> f64 {
    v.exp()
}
/// `ln(v)`: NaN for negative input, -Inf for 0.
pub fn ln(v: f64) -> f64 {
    v.ln()
}
/// `log2(v)`.
pub fn log2(v: f64) -> f64 {
    v.log2()
}
/// `log10(v)`.
pub fn log10(v: f64) -> f64 {
    v.log10()
}
/// `sqrt(v)`.
pub fn sqrt(v: f64) -> f64 {
    v.sqrt()
}

/// `sgn(v)`: -1, 1, or the input itself for ±0 and NaN.
pub fn sgn(v: f64) -> f64 {
    if v < 0.0 {
        -1.0
    } else if v > 0.0 {
        1.0
    } else {
        v
    }
}

/// `round(v, to_nearest)`: rounds to the nearest multiple of `to_nearest`,
/// ties rounding up (towards +Inf), computed through the inverse as
/// Prometheus does to limit floating-point error.
pub fn round(v: f64, to_nearest: f64) -> f64 {
    let inv = 1.0 / to_nearest;
    (v * inv + 0.5).floor() / inv
}

/// `clamp(v, min, max)`. Returns `None` when `max < min`: Prometheus then
/// returns an empty vector for the whole call, not just this element.
/// A NaN value stays NaN.
pub fn clamp(v: f64, min: f64, max: f64) -> Option<f64> {
    if max < min {
        return None;
    }
    Some(go_max(min, go_min(max, v)))
}

/// `clamp_min(v, min)`.
pub fn clamp_min(v: f64, min: f64) -> f64 {
    go_max(min, go_min(f64::INFINITY, v))
}

/// `clamp_max(v, max)`.
pub fn clamp_max(v: f64, max: f64) -> f64 {
    go_max(f64::NEG_INFINITY, go_min(max, v))
}

/// `sin(v)`.
pub fn sin(v: f64) -> f64 {
    v.sin()
}
/// `cos(v)`.
pub fn cos(v: f64) -> f64 {
    v.cos()
}
/// `tan(v)`.
pub fn tan(v: f64) -> f64 {
    v.tan()
}
/// `asin(v)`.
pub fn asin(v: f64) -> f64 {
    v.asin()
}
/// `acos(v)`.
pub fn acos(v: f64) -> f64 {
    v.acos()
}
/// `atan(v)`.
pub fn atan(v: f64) -> f64 {
    v.atan()
}
/// `sinh(v)`.
pub fn sinh(v: f64) -> f64 {
    v.sinh()
}
/// `cosh(v)`.
pub fn cosh(v: f64) -> f64 {
    v.cosh()
}
/// `tanh(v)`.
pub fn tanh(v: f64) -> f64 {
    v.tanh()
}
/// `asinh(v)`.
pub fn asinh(v: f64) -> f64 {
    v.asinh()
}
/// `acosh(v)`.
pub fn acosh(v: f64) -> f64 {
    v.acosh()
}
/// `atanh(v)`.
pub fn atanh(v: f64) -> f64 {
    v.atanh()
}
/// `deg(v)`: radians to degrees, as `v * 180 / pi` (in that order).
pub fn deg(v: f64) -> f64 {
    v * 180.0 / std::f64::consts::PI
}
/// `rad(v)`: degrees to radians, as `v * pi / 180` (in that order).
pub fn rad(v: f64) -> f64 {
    v * std::f64::consts::PI / 180.0
}
/// `pi()`.
pub fn pi() -> f64 {
    std::f64::consts::PI
}

/// The element-wise function of one float argument with this PromQL name,
/// for the engine's dispatch table. `round`, `clamp*` and the date functions
/// take extra arguments and are not included.
pub fn unary(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => abs,
        "ceil" => ceil,
        "floor" => floor,
        "exp" => exp,
        "ln" => ln,
        "log2" => log2,
        "log10" => log10,
        "sqrt" => sqrt,
        "sgn" => sgn,
        "sin" => sin,
        "cos" => cos,
        "tan" => tan,
        "asin" => asin,
        "acos" => acos,
        "atan" => atan,
        "sinh" => sinh,
        "cosh" => cosh,
        "tanh" => tanh,
        "asinh" => asinh,
        "acosh" => acosh,
        "atanh" => atanh,
        "deg" => deg,
        "rad" => rad,
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_ties_go_up_and_supports_multiples() {
        assert_eq!(round(2.5, 1.0), 3.0);
        assert_eq!(round(-2.5, 1.0), -2.0);
        assert_eq!(round(12.34, 0.1), 12.3);
        assert_eq!(round(17.0, 5.0), 15.0);
        assert_eq!(round(17.5, 5.0), 20.0);
    }

    #[test]
    fn clamp_keeps_nan_and_refuses_inverted_bounds() {
        assert_eq!(clamp(5.0, 0.0, 3.0), Some(3.0));
        assert_eq!(clamp(-5.0, 0.0, 3.0), Some(0.0));
        assert!(clamp(f64::NAN, 0.0, 3.0).unwrap().is_nan());
        assert_eq!(clamp(1.0, 3.0, 0.0), None);
        assert_eq!(clamp_min(-1.0, 0.0), 0.0);
        assert_eq!(clamp_max(10.0, 5.0), 5.0);
        assert!(clamp_max(f64::NAN, 5.0).is_nan());
    }

    #[test]
    fn sgn_keeps_zero_and_nan() {
        assert_eq!(sgn(-3.0), -1.0);
        assert_eq!(sgn(0.1), 1.0);
        assert!(sgn(-0.0).is_sign_negative());
        assert!(sgn(f64::NAN).is_nan());
    }

    #[test]
    fn dispatch_by_name() {
        assert_eq!(unary("deg").map(|f| f(std::f64::consts::PI)), Some(180.0));
        assert_eq!(unary("rad").map(|f| f(180.0)), Some(std::f64::consts::PI));
        assert!(unary("round").is_none());
    }
}
