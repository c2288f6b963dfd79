//! Test-only pauses at chosen steps of a hand-off or a merge, so that a
//! crash test can SIGKILL a real `tidemark` compactor in the middle of one
//! (`tests/tests/compactor_crash.rs`).
//!
//! Off unless the environment variable [`CRASH_POINT_ENV`] is set when the
//! compactor starts; production never sets it, and an unset variable costs
//! one `Option` check per step. Values:
//!
//! - `handoff-upload:N`: a handed-off block's bucket upload, after its N-th
//!   object (meta.json is the last object);
//! - `handoff-index`: a handed-off block whole in the bucket, before the
//!   tenant's index is rewritten;
//! - `merge-upload:N`: a merged block's upload, after its N-th object;
//! - `merge-marks`: a merged block uploaded, before its inputs are marked.
//!
//! Reaching the step logs [`PAUSE_MESSAGE`] and waits forever (holding the
//! tenant's lock, as a hung process would), until the test kills it.

use std::str::FromStr;

/// The environment variable that arms a crash point.
pub const CRASH_POINT_ENV: &str = "TIDEMARK_COMPACTOR_TEST_PAUSE";

/// Logged when a crash point is reached, for the test to wait on.
pub const PAUSE_MESSAGE: &str = "compactor test pause reached; waiting to be killed";

/// A step of a hand-off or a merge where the compactor can pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    HandoffUpload,
    HandoffIndex,
    MergeUpload,
    MergeMarks,
}

/// The armed crash point, if any: a step and, for uploads, the object
/// count after which to pause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CrashPoint(Option<(Step, usize)>);

impl FromStr for CrashPoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, n) = match s.split_once(':') {
            Some((name, n)) => {
                let n = n
                    .parse::<usize>()
                    .map_err(|_| format!("{CRASH_POINT_ENV}: {n:?} is not an object count"))?;
                (name, n)
            }
            None => (s, 0),
        };
        let step = match name {
            "handoff-upload" => Step::HandoffUpload,
            "handoff-index" => Step::HandoffIndex,
            "merge-upload" => Step::MergeUpload,
            "merge-marks" => Step::MergeMarks,
            _ => {
                return Err(format!(
                    "{CRASH_POINT_ENV}: unknown step {name:?}; expected handoff-upload:N, handoff-index, merge-upload:N or merge-marks"
                ));
            }
        };
        Ok(CrashPoint(Some((step, n))))
    }
}

impl CrashPoint {
    /// The crash point armed by [`CRASH_POINT_ENV`]; a bad value is
    /// logged and ignored (it only ever comes from a test).
    pub(crate) fn from_env() -> Self {
        let Ok(value) = std::env::var(CRASH_POINT_ENV) else {
            return CrashPoint::default();
        };
        match value.parse() {
            Ok(p) => {
                tracing::warn!(crash_point = %value, "compactor test crash point armed");
                p
            }
            Err(e) => {
                tracing::warn!(error = %e, "ignoring a bad compactor test crash point");
                CrashPoint::default()
            }
        }
    }

    fn matches(&self, step: Step, objects: usize) -> bool {
        self.0 == Some((step, objects))
    }

    /// Waits forever if this is the armed step (and object count).
    pub(crate) async fn reached(&self, step: Step, objects: usize) {
        if self.matches(step, objects) {
            tracing::warn!(?step, objects, "{PAUSE_MESSAGE}");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn values_name_a_step_and_an_object_count() {
        let p: CrashPoint = "handoff-upload:2".parse().unwrap();
        assert!(p.matches(Step::HandoffUpload, 2));
        assert!(!p.matches(Step::HandoffUpload, 1));
        assert!(!p.matches(Step::MergeUpload, 2));
        let p: CrashPoint = "merge-marks".parse().unwrap();
        assert!(p.matches(Step::MergeMarks, 0));
        assert!("merge-upload:x".parse::<CrashPoint>().is_err());
        assert!("halfway".parse::<CrashPoint>().is_err());
        assert!(!CrashPoint::default().matches(Step::MergeMarks, 0));
    }
}
