//! One `start_<role>` per role: builds it from its config section, the
//! shared [`RoleContext`] and this process's [`Cluster`] membership, and
//! collects what it serves.
//!
//! Roles that need the ring get it from the [`Cluster`]: distributors and
//! queriers an `IngesterRing` ([`Cluster::ingester_ring`]), scrapers and
//! compactors a [`cluster::RingShard`] ([`Cluster::shard`]) to split targets
//! and tenants. A role's start must not wait for the ring: the gRPC server
//! that lets this process join starts after every role started.

pub(crate) mod cluster;
mod compactor;
mod ring;
mod scraper;

use std::sync::Arc;

use anyhow::Context;
use tidemark_distributor::Distributor;
use tidemark_ingester::Ingester;
use tidemark_querier::Querier;
use tidemark_server::RoleContext;

pub(crate) use self::cluster::Cluster;
use crate::config::Config;
use crate::roles::{Role, Target};

mod blocks;

/// A started role, kept to serve and to stop.
enum Started {
    Ingester(Arc<Ingester>),
    Distributor(Distributor),
    Querier(Querier),
    Scraper(scraper::ScraperRole),
    Compactor(compactor::CompactorRole),
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
                Started::Scraper(s) => s.http_routes(),
                Started::Compactor(_) => axum::Router::new(),
            })
            .fold(axum::Router::new(), axum::Router::merge)
    }

    pub(crate) fn add_grpc(&self, routes: &mut tonic::service::RoutesBuilder) {
        for r in &self.roles {
            match r {
                Started::Ingester(i) => i.add_grpc(routes),
                Started::Distributor(d) => d.add_grpc(routes),
                Started::Querier(q) => q.add_grpc(routes),
                Started::Scraper(_) => {}
                Started::Compactor(c) => c.add_grpc(routes),
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
                Started::Scraper(s) => s.stop().await,
                Started::Compactor(c) => c.stop(),
            }
        }
    }
}

pub(crate) async fn start_roles(
    cfg: &Config,
    target: &Target,
    ctx: &RoleContext,
    cluster: &Cluster,
) -> anyhow::Result<StartedRoles> {
    let mut started = StartedRoles::default();
    for role in &target.roles {
        match role {
            Role::Ingester => {
                let locator = blocks::compactor_locator(cfg, target, ctx);
                let i = Ingester::start_with_locator(cfg.ingester.clone(), ctx.clone(), locator)
                    .await
                    .context("starting the ingester")?;
                let i = Arc::new(i);
                cluster.activate_when_ready(ctx, Arc::clone(&i));
                started.roles.push(Started::Ingester(i));
            }
            Role::Distributor => {
                let d = Distributor::start(
                    cfg.distributor.clone(),
                    ctx.clone(),
                    cluster.ingester_ring(),
                    Some(cluster.limits_source()),
                )
                .await
                .context("starting the distributor")?;
                started.roles.push(Started::Distributor(d));
            }
            Role::Querier => {
                // Queries read the bucket's blocks as well as the ingesters, so
                // history handed to the compactor stays queryable.
                let store = cfg
                    .bucket
                    .build(&ctx.data_dir)
                    .context("connecting the querier to the bucket")?;
                let q = Querier::start_with_bucket(
                    cfg.querier.clone(),
                    ctx.clone(),
                    cluster.ingester_ring(),
                    Arc::new(tidemark_bucket::Bucket::new(store)),
                )
                .await
                .context("starting the querier")?;
                started.roles.push(Started::Querier(q));
            }
            Role::Scraper => {
                let s = scraper::ScraperRole::start(cfg, target, ctx, cluster)
                    .await
                    .context("starting the scraper")?;
                started.roles.push(Started::Scraper(s));
            }
            Role::Compactor => {
                let c = compactor::start_compactor(cfg, target, ctx, cluster)?;
                started.roles.push(Started::Compactor(c));
            }
        }
    }
    Ok(started)
}
