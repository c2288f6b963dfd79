//! Block storage wiring: which compactor an ingester hands its blocks to.

use std::sync::Arc;

use tidemark_ingester::{CompactorLocator, StaticCompactorLocator};
use tidemark_server::RoleContext;

use crate::config::Config;
use crate::roles::{Role, Target};

/// `ingester.blocks.compactor_address` when set; otherwise this process's
/// own gRPC address when it runs the compactor too (the embedded `all`
/// target); otherwise none, and blocks stay local until one is configured.
pub(super) fn compactor_locator(
    cfg: &Config,
    target: &Target,
    ctx: &RoleContext,
) -> Arc<dyn CompactorLocator> {
    let configured = &cfg.ingester.blocks.compactor_address;
    let address = if configured.is_empty() && target.roles.contains(&Role::Compactor) {
        ctx.advertise_grpc_addr.clone()
    } else {
        configured.clone()
    };
    Arc::new(StaticCompactorLocator::new(address))
}
