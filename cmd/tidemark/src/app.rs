//! Starting the roles, serving, and shutting down in a fixed order.

use std::sync::Arc;

use anyhow::Context;
use tidemark_server::{
    Metrics, RoleContext, ServiceState, Services, Tenancy, admin_router, serve_grpc, serve_http,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

use crate::config::Config;
use crate::roles::Target;
use crate::wiring::Cluster;

/// The address other processes reach a listener at: its own, with an
/// unspecified IP (`0.0.0.0`) replaced by loopback.
fn advertised(addr: std::net::SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    }
}

fn init_logging(cfg: &Config) {
    let filter =
        EnvFilter::try_new(&cfg.server.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if cfg.server.log_format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Runs until SIGTERM or SIGINT, then shuts down: not ready, LEAVING in the
/// ring, stop accepting, drain in-flight requests, stop roles in reverse
/// start order, leave the ring.
pub(crate) async fn run(cfg: Config) -> anyhow::Result<()> {
    init_logging(&cfg);
    let target: Target = cfg.target.parse().map_err(anyhow::Error::msg)?;
    let http_addr = cfg.server.http_addr()?;
    let grpc_addr = cfg.server.grpc_addr()?;
    let http_listener = TcpListener::bind(http_addr).await.with_context(|| {
        format!("cannot listen for HTTP on {http_addr} (server.http_listen_address)")
    })?;
    let grpc_listener = TcpListener::bind(grpc_addr).await.with_context(|| {
        format!("cannot listen for gRPC on {grpc_addr} (server.grpc_listen_address)")
    })?;
    let grpc_local = grpc_listener.local_addr()?;
    let http_local = http_listener.local_addr()?;
    std::fs::create_dir_all(&cfg.storage.data_dir).with_context(|| {
        format!(
            "cannot create data directory {}",
            cfg.storage.data_dir.display()
        )
    })?;

    let shutdown = CancellationToken::new();
    let services = Services::new();
    let metrics = Arc::new(Metrics::new());
    let tasks = TaskTracker::new();
    let tenancy = Tenancy::new(&cfg.tenancy, target.embedded)?;
    let advertise = advertised(grpc_local);
    let ctx = RoleContext {
        metrics: Arc::clone(&metrics),
        services: services.clone(),
        data_dir: cfg.storage.data_dir.clone(),
        tenancy,
        shutdown: shutdown.clone(),
        tasks: tasks.clone(),
        advertise_grpc_addr: advertise,
        grpc_max_message_bytes: cfg.server.grpc_max_message_bytes,
    };
    info!(roles = ?target.roles, embedded = target.embedded, "starting tidemark");

    let mut router = admin_router(services.clone(), Arc::clone(&metrics), cfg.to_masked_yaml());
    let mut grpc_routes = tonic::service::RoutesBuilder::default();
    let cluster = Cluster::start(&cfg, &target, &ctx, &advertised(http_local)).await?;
    router = router.merge(cluster.http_routes());
    cluster.add_grpc(&mut grpc_routes);
    let started = crate::wiring::start_roles(&cfg, &target, &ctx, &cluster).await?;
    router = router.merge(started.http_routes());
    started.add_grpc(&mut grpc_routes);
    services.set("server", ServiceState::Running);

    let http = tokio::spawn(serve_http(http_listener, router, shutdown.clone()));
    let grpc = tokio::spawn(serve_grpc(
        grpc_listener,
        grpc_routes.routes(),
        shutdown.clone(),
    ));

    wait_for_signal().await;
    info!("shutdown requested");
    services.stopping();
    cluster.start_leaving().await;
    shutdown.cancel();
    let deadline = cfg.server.graceful_shutdown_timeout.as_std();
    let drained = tokio::time::timeout(deadline, async {
        let _ = http.await;
        let _ = grpc.await;
        started.stop().await;
        tasks.close();
        tasks.wait().await;
    })
    .await;
    if drained.is_err() {
        warn!(
            ?deadline,
            "graceful shutdown deadline passed; exiting with work in flight"
        );
    }
    cluster.leave().await;
    info!("tidemark stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the process can only be killed; keep serving.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
