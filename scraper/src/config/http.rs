//! HTTP client settings of a scrape job (Prometheus's `HTTPClientConfig`).

use std::collections::BTreeMap;

use serde::Deserialize;
use tidemark_config::{ConfigError, Validate, join};

/// `basic_auth`: a username and a password, each inline or from a file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub username_file: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_file: Option<String>,
}

/// `authorization`: an `Authorization: <type> <credentials>` header.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    #[serde(default = "default_auth_type", rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub credentials: Option<String>,
    #[serde(default)]
    pub credentials_file: Option<String>,
}

fn default_auth_type() -> String {
    "Bearer".to_string()
}

/// `tls_config`. Parsed and validated; scraping over TLS is not implemented
/// yet (see docs/scraper.md).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    #[serde(default)]
    pub ca: Option<String>,
    #[serde(default)]
    pub ca_file: Option<String>,
    #[serde(default)]
    pub cert: Option<String>,
    #[serde(default)]
    pub cert_file: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub key_file: Option<String>,
    #[serde(default)]
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    #[serde(default)]
    pub min_version: Option<String>,
    #[serde(default)]
    pub max_version: Option<String>,
}

/// The HTTP client fields Prometheus accepts on a scrape job and on HTTP
/// based discovery. Flattened by hand into those structs' YAML (serde's
/// `flatten` cannot be combined with refusing unknown fields).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpClientConfig {
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<String>,
    pub oauth2: Option<serde_yaml::Value>,
    pub tls_config: TlsConfig,
    pub proxy_url: Option<String>,
    pub no_proxy: Option<String>,
    pub proxy_from_environment: bool,
    pub proxy_connect_header: Option<BTreeMap<String, serde_yaml::Value>>,
    pub follow_redirects: bool,
    pub enable_http2: bool,
    pub http_headers: Option<serde_yaml::Value>,
}

impl Validate for HttpClientConfig {
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let auths = [
            self.basic_auth.is_some(),
            self.authorization.is_some(),
            self.oauth2.is_some(),
            self.bearer_token.is_some() || self.bearer_token_file.is_some(),
        ];
        if auths.iter().filter(|&&a| a).count() > 1 {
            return Err(ConfigError::invalid(
                path,
                "at most one of basic_auth, authorization, oauth2, bearer_token & bearer_token_file must be configured",
            ));
        }
        if self.bearer_token.is_some() && self.bearer_token_file.is_some() {
            return Err(ConfigError::invalid(
                join(path, "bearer_token"),
                "at most one of bearer_token & bearer_token_file must be configured",
            ));
        }
        if let Some(b) = &self.basic_auth {
            let p = join(path, "basic_auth");
            if b.password.is_some() && b.password_file.is_some() {
                return Err(ConfigError::invalid(
                    p,
                    "at most one of password & password_file must be configured",
                ));
            }
            if !b.username.is_empty() && b.username_file.is_some() {
                return Err(ConfigError::invalid(
                    p,
                    "at most one of username & username_file must be configured",
                ));
            }
        }
        if let Some(a) = &self.authorization {
            let p = join(path, "authorization");
            if a.kind.eq_ignore_ascii_case("basic") {
                return Err(ConfigError::invalid(
                    join(&p, "type"),
                    "authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
                ));
            }
            if a.credentials.is_some() && a.credentials_file.is_some() {
                return Err(ConfigError::invalid(
                    p,
                    "at most one of credentials & credentials_file must be configured",
                ));
            }
        }
        let t = &self.tls_config;
        let p = join(path, "tls_config");
        for (a, b, what) in [
            (&t.ca, &t.ca_file, "ca & ca_file"),
            (&t.cert, &t.cert_file, "cert & cert_file"),
            (&t.key, &t.key_file, "key & key_file"),
        ] {
            if a.is_some() && b.is_some() {
                return Err(ConfigError::invalid(
                    &p,
                    format!("at most one of {what} must be configured"),
                ));
            }
        }
        let has_cert = t.cert.is_some() || t.cert_file.is_some();
        let has_key = t.key.is_some() || t.key_file.is_some();
        if has_cert != has_key {
            return Err(ConfigError::invalid(
                p,
                "exactly one of key or key_file, and one of cert or cert_file must be configured together",
            ));
        }
        for (v, field) in [
            (&t.min_version, "min_version"),
            (&t.max_version, "max_version"),
        ] {
            if let Some(v) = v
                && !matches!(v.as_str(), "TLS10" | "TLS11" | "TLS12" | "TLS13")
            {
                return Err(ConfigError::invalid(
                    join(&join(path, "tls_config"), field),
                    format!("unknown TLS version {v:?} (expected TLS10, TLS11, TLS12 or TLS13)"),
                ));
            }
        }
        if let Some(u) = &self.proxy_url
            && !(u.starts_with("http://")
                || u.starts_with("https://")
                || u.starts_with("socks5://"))
        {
            return Err(ConfigError::invalid(
                join(path, "proxy_url"),
                format!("{u:?} is not a proxy URL"),
            ));
        }
        Ok(())
    }
}

/// Declares a struct with the HTTP client fields inline plus `$extra`
/// fields, and a method to collect the HTTP part.
macro_rules! with_http_client_fields {
    (
        $(#[$meta:meta])*
        pub struct $name:ident { $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
            #[serde(default)]
            pub basic_auth: Option<$crate::config::http::BasicAuth>,
            #[serde(default)]
            pub authorization: Option<$crate::config::http::Authorization>,
            #[serde(default)]
            pub bearer_token: Option<String>,
            #[serde(default)]
            pub bearer_token_file: Option<String>,
            #[serde(default)]
            pub oauth2: Option<serde_yaml::Value>,
            #[serde(default)]
            pub tls_config: $crate::config::http::TlsConfig,
            #[serde(default)]
            pub proxy_url: Option<String>,
            #[serde(default)]
            pub no_proxy: Option<String>,
            #[serde(default)]
            pub proxy_from_environment: bool,
            #[serde(default)]
            pub proxy_connect_header: Option<std::collections::BTreeMap<String, serde_yaml::Value>>,
            #[serde(default = "crate::config::http::default_true")]
            pub follow_redirects: bool,
            #[serde(default = "crate::config::http::default_true")]
            pub enable_http2: bool,
            #[serde(default)]
            pub http_headers: Option<serde_yaml::Value>,
        }

        impl $name {
            /// The HTTP client part of this section.
            pub fn http_client(&self) -> $crate::config::http::HttpClientConfig {
                $crate::config::http::HttpClientConfig {
                    basic_auth: self.basic_auth.clone(),
                    authorization: self.authorization.clone(),
                    bearer_token: self.bearer_token.clone(),
                    bearer_token_file: self.bearer_token_file.clone(),
                    oauth2: self.oauth2.clone(),
                    tls_config: self.tls_config.clone(),
                    proxy_url: self.proxy_url.clone(),
                    no_proxy: self.no_proxy.clone(),
                    proxy_from_environment: self.proxy_from_environment,
                    proxy_connect_header: self.proxy_connect_header.clone(),
                    follow_redirects: self.follow_redirects,
                    enable_http2: self.enable_http2,
                    http_headers: self.http_headers.clone(),
                }
            }
        }
    };
}

pub(crate) use with_http_client_fields;

pub(crate) fn default_true() -> bool {
    true
}
