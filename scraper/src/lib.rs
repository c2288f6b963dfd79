//! tidemark-scraper: Prometheus-compatible scraping.
//!
//! - [`parse`]: the Prometheus text and OpenMetrics parsers, content negotiation.
//! - [`config`]: the scrape part of an unchanged `prometheus.yml`, plus the
//!   per-job `tenant`.
//! - [`relabel`]: `relabel_configs` / `metric_relabel_configs`, every action.
//! - [`discovery`]: target groups from `static_configs`, `file_sd_configs`
//!   files (watched), `http_sd_configs` endpoints and `kubernetes_sd_configs`
//!   (list and watch of the Kubernetes API).
//! - [`target`]: target labels, URL and the scraped-label merge.
//! - [`scrape`]: the per-target scrape loop, its report series, staleness,
//!   the [`scrape::ScrapeManager`] service that applies and reloads a config,
//!   and the seams to the rest of tidemark ([`scrape::SampleSink`],
//!   [`scrape::TargetOwnership`]).
//! - [`sink`]: the [`scrape::SampleSink`] that pushes to distributors over
//!   gRPC through a bounded buffer, with retries and backoff.
//! - [`service`]: the scraper role as a service ([`service::Scraper`]):
//!   reloads, discovery refresh, ring changes, and its HTTP API
//!   (`/api/v1/targets`, `/targets`, `/-/reload`).

pub mod config;
pub mod discovery;
mod error;
pub mod parse;
pub mod relabel;
pub mod scrape;
pub mod service;
pub mod sink;
pub mod target;

pub use error::ScrapeError;
