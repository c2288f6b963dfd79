//! One `start_<role>` per role: builds it from its config section and the
//! shared [`RoleContext`], and collects what it serves.

use tidemark_server::RoleContext;

use crate::config::Config;
use crate::roles::{Role, Target};

/// The roles running in this process, in start order.
#[derive(Default)]
pub(crate) struct StartedRoles {
    routers: Vec<axum::Router>,
}

impl StartedRoles {
    pub(crate) fn http_routes(&self) -> axum::Router {
        self.routers
            .iter()
            .cloned()
            .fold(axum::Router::new(), axum::Router::merge)
    }

    pub(crate) fn add_grpc(&self, _routes: &mut tonic::service::RoutesBuilder) {}

    /// Stops the roles in reverse start order.
    pub(crate) async fn stop(&self) {}
}

pub(crate) async fn start_roles(
    _cfg: &Config,
    target: &Target,
    ctx: &RoleContext,
) -> anyhow::Result<StartedRoles> {
    let started = StartedRoles::default();
    for role in &target.roles {
        match role {
            Role::Ingester
            | Role::Compactor
            | Role::Distributor
            | Role::Querier
            | Role::Scraper => {
                tracing::warn!(role = %role, "role is not wired into the binary yet");
                let _ = ctx;
            }
        }
    }
    Ok(started)
}
