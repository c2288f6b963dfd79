//! What the binary hands each role when it builds it.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::{Metrics, Services, Tenancy};

/// Shared plumbing a role needs to start: where to keep data, where to
/// register metrics and report its state, the tenancy rule, and the shutdown
/// signal. Long-lived tasks are spawned on `tasks` so the binary can wait
/// for them; none are detached.
#[derive(Clone)]
pub struct RoleContext {
    pub metrics: Arc<Metrics>,
    pub services: Services,
    /// Root of this process's local data (`storage.data_dir`).
    pub data_dir: PathBuf,
    pub tenancy: Tenancy,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
    /// This process's own gRPC address as other processes reach it.
    pub advertise_grpc_addr: String,
    /// gRPC message size limit, from `server.grpc_max_message_bytes`.
    pub grpc_max_message_bytes: usize,
}
