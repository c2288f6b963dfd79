use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use tidemark_config::{ConfigError, Duration, Validate, join};

/// The process's listeners and shutdown behaviour.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// HTTP listen address (Prometheus API, remote write, admin pages).
    pub http_listen_address: String,
    /// gRPC listen address (traffic between roles).
    pub grpc_listen_address: String,
    /// How long a graceful shutdown may take before in-flight work is cut off.
    pub graceful_shutdown_timeout: Duration,
    /// Largest gRPC message accepted or sent, in bytes.
    pub grpc_max_message_bytes: usize,
    /// Log level filter (`error`, `warn`, `info`, `debug`, `trace`, or a tracing directive).
    pub log_level: String,
    /// `logfmt`-like text or `json`.
    pub log_format: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            http_listen_address: "0.0.0.0:9009".into(),
            grpc_listen_address: "0.0.0.0:9095".into(),
            graceful_shutdown_timeout: Duration::from_secs(30),
            grpc_max_message_bytes: 100 << 20,
            log_level: "info".into(),
            log_format: "text".into(),
        }
    }
}

impl ServerConfig {
    pub fn http_addr(&self) -> Result<SocketAddr, ConfigError> {
        parse_addr(&self.http_listen_address, "server.http_listen_address")
    }
    pub fn grpc_addr(&self) -> Result<SocketAddr, ConfigError> {
        parse_addr(&self.grpc_listen_address, "server.grpc_listen_address")
    }
}

fn parse_addr(s: &str, path: &str) -> Result<SocketAddr, ConfigError> {
    // Accept the Go-style ":9009" as "all interfaces".
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.parse().map_err(|_| {
        ConfigError::invalid(
            path,
            format!("expected host:port like 0.0.0.0:9009, got {s:?}"),
        )
    })
}

impl Validate for ServerConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        parse_addr(
            &self.http_listen_address,
            &join(path, "http_listen_address"),
        )?;
        parse_addr(
            &self.grpc_listen_address,
            &join(path, "grpc_listen_address"),
        )?;
        if self.grpc_max_message_bytes < 1024 {
            return Err(ConfigError::invalid(
                join(path, "grpc_max_message_bytes"),
                "must be at least 1024",
            ));
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(ConfigError::invalid(
                join(path, "log_format"),
                format!("expected `text` or `json`, got {:?}", self.log_format),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_address_names_the_field() {
        let c = ServerConfig {
            http_listen_address: "nope".into(),
            ..Default::default()
        };
        let e = c.validate("server").unwrap_err().to_string();
        assert!(e.contains("server.http_listen_address"), "{e}");
        assert!(ServerConfig::default().validate("server").is_ok());
    }
}
