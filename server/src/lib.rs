//! What every tidemark process shares, whatever roles it runs.
//!
//! - [`ErrorKind`]: the small code set every crate's errors map to, and the
//!   one place that turns it into an HTTP status and a gRPC code.
//! - [`Services`]: the state of each long-lived service, behind `/ready` and
//!   `/services`.
//! - [`Metrics`]: the process's metric registry, served at `/metrics`.
//! - [`Tenancy`]: which tenant a request belongs to (`X-Scope-OrgID`).
//! - [`RoleContext`]: what the binary hands every role it starts.
//! - [`ServerConfig`], [`serve_http`], [`serve_grpc`]: the two listeners, with
//!   graceful shutdown on a cancellation token.

mod config;
mod error;
mod http_server;
mod metrics;
mod process;
mod role;
mod services;
mod tenancy;

pub use config::ServerConfig;
pub use error::{ApiError, ErrorKind};
pub use http_server::{admin_router, serve_grpc, serve_http};
pub use metrics::Metrics;
pub use role::RoleContext;
pub use services::{ServiceState, Services};
pub use tenancy::{MultitenancyMode, TENANT_HEADER, Tenancy, TenancyConfig, TenantError};
