//! The state of every long-lived service in the process.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;

/// Where a service is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub enum ServiceState {
    /// Starting up; the string says what it waits for (e.g. "replaying WAL").
    Starting(String),
    Running,
    Stopping,
    Terminated,
    Failed(String),
}

/// Registry of service states behind `/ready` and `/services`.
///
/// Cheap to clone; each service updates its own entry.
#[derive(Clone, Default)]
pub struct Services {
    states: Arc<RwLock<BTreeMap<String, ServiceState>>>,
}

impl Services {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&self, name: &str, state: ServiceState) {
        let mut m = self.states.write().unwrap_or_else(|p| p.into_inner());
        m.insert(name.to_string(), state);
    }

    pub fn snapshot(&self) -> BTreeMap<String, ServiceState> {
        self.states
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// `Ok` when every service runs, else the reasons of those that don't.
    pub fn readiness(&self) -> Result<(), Vec<String>> {
        let m = self.snapshot();
        if m.is_empty() {
            return Err(vec!["no services started yet".to_string()]);
        }
        let not_ready: Vec<String> = m
            .iter()
            .filter(|(_, s)| **s != ServiceState::Running)
            .map(|(n, s)| match s {
                ServiceState::Starting(why) => format!("{n}: starting ({why})"),
                ServiceState::Failed(why) => format!("{n}: failed: {why}"),
                other => format!("{n}: {other:?}"),
            })
            .collect();
        if not_ready.is_empty() {
            Ok(())
        } else {
            Err(not_ready)
        }
    }

    /// Marks every service as stopping, so `/ready` fails during shutdown.
    pub fn stopping(&self) {
        let mut m = self.states.write().unwrap_or_else(|p| p.into_inner());
        for s in m.values_mut() {
            if *s == ServiceState::Running {
                *s = ServiceState::Stopping;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_all_run() {
        let s = Services::new();
        assert!(s.readiness().is_err());
        s.set("ingester", ServiceState::Starting("replaying WAL".into()));
        s.set("querier", ServiceState::Running);
        let why = s.readiness().unwrap_err();
        assert_eq!(why, vec!["ingester: starting (replaying WAL)".to_string()]);
        s.set("ingester", ServiceState::Running);
        assert!(s.readiness().is_ok());
        s.stopping();
        assert!(s.readiness().is_err());
    }
}
