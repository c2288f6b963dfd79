use crate::Labels;

/// Bit pattern Prometheus uses to mark a series as stale.
///
/// It is a NaN, so it must be compared by bits: every layer of tidemark keeps
/// it bit-exact from remote write to query results.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker as a float.
pub const STALE_NAN: f64 = f64::from_bits(STALE_NAN_BITS);

/// Whether `v` is the staleness marker (not just any NaN).
#[inline]
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One float sample: a timestamp in milliseconds since the Unix epoch and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}

impl Sample {
    pub fn new(t: i64, v: f64) -> Self {
        Sample { t, v }
    }

    /// Equality that treats two NaNs with the same bits as equal, as storage
    /// deduplication needs.
    pub fn bit_eq(&self, other: &Sample) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}

/// An exemplar: a sample of one series annotated with labels of its own,
/// typically the trace that produced it (`trace_id`), so a dashboard can
/// jump from a graph to a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// The longest exemplar label set, in characters of names and values
/// together: OpenMetrics's limit, which Prometheus enforces on append.
pub const EXEMPLAR_MAX_LABEL_CHARS: usize = 128;

impl Exemplar {
    /// Characters of the label names and values together (checked against
    /// [`EXEMPLAR_MAX_LABEL_CHARS`]).
    pub fn label_chars(&self) -> usize {
        self.labels
            .iter()
            .map(|(n, v)| n.chars().count() + v.chars().count())
            .sum()
    }

    /// Same timestamp, value bits and labels.
    pub fn same_as(&self, other: &Exemplar) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits() && self.labels == other.labels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_nan_is_a_nan_but_not_every_nan_is_stale() {
        assert!(STALE_NAN.is_nan());
        assert!(is_stale_nan(STALE_NAN));
        assert!(!is_stale_nan(f64::NAN));
    }
}
