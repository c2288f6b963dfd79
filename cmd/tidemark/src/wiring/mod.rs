//! One `start_<role>` per role: builds it from its config section and the
//! shared [`RoleContext`], and collects what it serves.

use std::sync::Arc;

use anyhow::Context;
use tidemark_distributor::Distributor;
use tidemark_ingester::Ingester;
use tidemark_ingester_client::{IngesterRing, StaticRing};
use tidemark_querier::Querier;
use tidemark_server::RoleContext;

use crate::config::Config;
use crate::roles::{Role, Target};

mod blocks;

/// A started role, kept to serve and to stop.
enum Started {
    Ingester(Ingester),
    Distributor(Distributor),
    Querier(Querier),
}

/// The roles running in this process, in start order.
#[derive(Default)]
pub(crate) struct StartedRoles {
    roles: Vec<Started>,
}

impl StartedRoles {
    pub(crate) fn http_routes(&self) -> axum::Router {
        self.roles
            .iter()
            .map(|r| match r {
                Started::Ingester(i) => i.http_routes(),
                Started::Distributor(d) => d.http_routes(),
                Started::Querier(q) => q.http_routes(),
            })
            .fold(axum::Router::new(), axum::Router::merge)
    }

    pub(crate) fn add_grpc(&self, routes: &mut tonic::service::RoutesBuilder) {
        for r in &self.roles {
            match r {
                Started::Ingester(i) => i.add_grpc(routes),
                Started::Distributor(d) => d.add_grpc(routes),
                Started::Querier(q) => q.add_grpc(routes),
            }
        }
    }

    /// Stops the roles in reverse start order: writes stop arriving before
    /// the ingesters flush.
    pub(crate) async fn stop(&self) {
        for r in self.roles.iter().rev() {
            match r {
                Started::Ingester(i) => i.stop().await,
                Started::Distributor(d) => d.stop().await,
                Started::Querier(q) => q.stop().await,
            }
        }
    }
}

/// The ring distributors and queriers use. Until the membership group is
/// wired in, every process talks to the ingester of its own process, which
/// is what the embedded `all` target needs.
fn ingester_ring(ctx: &RoleContext) -> Arc<dyn IngesterRing> {
    StaticRing::single(ctx.advertise_grpc_addr.clone())
}

pub(crate) async fn start_roles(
    cfg: &Config,
    target: &Target,
    ctx: &RoleContext,
) -> anyhow::Result<StartedRoles> {
    let mut started = StartedRoles::default();
    for role in &target.roles {
        match role {
            Role::Ingester => {
                let locator = blocks::compactor_locator(cfg, target, ctx);
                let i = Ingester::start_with_locator(cfg.ingester.clone(), ctx.clone(), locator)
                    .await
                    .context("starting the ingester")?;
                started.roles.push(Started::Ingester(i));
            }
            Role::Distributor => {
                let d = Distributor::start(
                    cfg.distributor.clone(),
                    ctx.clone(),
                    ingester_ring(ctx),
                    None,
                )
                .await
                .context("starting the distributor")?;
                started.roles.push(Started::Distributor(d));
            }
            Role::Querier => {
                let q = Querier::start(cfg.querier.clone(), ctx.clone(), ingester_ring(ctx))
                    .await
                    .context("starting the querier")?;
                started.roles.push(Started::Querier(q));
            }
            Role::Compactor | Role::Scraper => {
                tracing::warn!(role = %role, "role is not implemented yet; this process runs without it");
            }
        }
    }
    Ok(started)
}
