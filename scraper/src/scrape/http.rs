//! Fetching a target's body over HTTP the way Prometheus asks for it.

use std::io::Read;
use std::time::Duration;

use crate::ScrapeError;
use crate::config::http::HttpClientConfig;

/// Credentials for a job, with secrets read from files at scrape time (so
/// rotated files are picked up without a reload, as in Prometheus).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum AuthConfig {
    #[default]
    None,
    Basic {
        username: String,
        username_file: Option<String>,
        password: Option<String>,
        password_file: Option<String>,
    },
    /// `Authorization: <kind> <credentials>` (bearer tokens included).
    Header {
        kind: String,
        credentials: Option<String>,
        credentials_file: Option<String>,
    },
}

impl AuthConfig {
    pub fn from_http_client(c: &HttpClientConfig) -> Self {
        if let Some(b) = &c.basic_auth {
            return AuthConfig::Basic {
                username: b.username.clone(),
                username_file: b.username_file.clone(),
                password: b.password.clone(),
                password_file: b.password_file.clone(),
            };
        }
        if let Some(a) = &c.authorization {
            return AuthConfig::Header {
                kind: a.kind.clone(),
                credentials: a.credentials.clone(),
                credentials_file: a.credentials_file.clone(),
            };
        }
        if c.bearer_token.is_some() || c.bearer_token_file.is_some() {
            return AuthConfig::Header {
                kind: "Bearer".into(),
                credentials: c.bearer_token.clone(),
                credentials_file: c.bearer_token_file.clone(),
            };
        }
        AuthConfig::None
    }
}

async fn read_secret(
    inline: &Option<String>,
    file: &Option<String>,
    url: &str,
) -> Result<String, ScrapeError> {
    if let Some(f) = file {
        let s = tokio::fs::read_to_string(f)
            .await
            .map_err(|e| ScrapeError::Http {
                url: url.to_string(),
                message: format!("cannot read secret file {f}: {e}"),
            })?;
        return Ok(s.trim().to_string());
    }
    Ok(inline.clone().unwrap_or_default())
}

/// A fetched body and its `Content-Type`.
#[derive(Debug, Clone)]
pub struct FetchedBody {
    pub body: Vec<u8>,
    pub content_type: Option<String>,
}

/// An HTTP client shared by the loops of a scraper.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
}

impl Fetcher {
    pub fn new() -> Result<Self, ScrapeError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("tidemark-scraper/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ScrapeError::Http {
                url: String::new(),
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Fetcher { client })
    }

    /// GETs `url` within `timeout`, asking with `accept`, optionally for gzip,
    /// and refusing bodies above `body_limit` bytes once decompressed
    /// (0 = no limit).
    pub async fn fetch(
        &self,
        url: &str,
        accept: &str,
        timeout: Duration,
        gzip: bool,
        body_limit: u64,
        auth: &AuthConfig,
    ) -> Result<FetchedBody, ScrapeError> {
        let http_err = |message: String| ScrapeError::Http {
            url: url.to_string(),
            message,
        };
        if url.starts_with("https://") {
            return Err(http_err(
                "https targets are not supported yet (no TLS in this build)".into(),
            ));
        }
        let fut = async {
            let mut req = self.client.get(url).header("Accept", accept).header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format!("{}", timeout.as_secs_f64()),
            );
            req = req.header("Accept-Encoding", if gzip { "gzip" } else { "identity" });
            match auth {
                AuthConfig::None => {}
                AuthConfig::Basic {
                    username,
                    username_file,
                    password,
                    password_file,
                } => {
                    let user = if username.is_empty() {
                        read_secret(&None, username_file, url).await?
                    } else {
                        username.clone()
                    };
                    let pass = read_secret(password, password_file, url).await?;
                    req = req.basic_auth(user, Some(pass));
                }
                AuthConfig::Header {
                    kind,
                    credentials,
                    credentials_file,
                } => {
                    let c = read_secret(credentials, credentials_file, url).await?;
                    req = req.header("Authorization", format!("{kind} {c}"));
                }
            }
            let mut resp = req.send().await.map_err(|e| http_err(e.to_string()))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(http_err(format!("server returned HTTP status {status}")));
            }
            let content_type = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let gzipped = resp
                .headers()
                .get("content-encoding")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
            let mut raw = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| http_err(e.to_string()))? {
                raw.extend_from_slice(&chunk);
                if body_limit > 0 && !gzipped && raw.len() as u64 > body_limit {
                    return Err(body_limit_error(body_limit, raw.len() as u64));
                }
            }
            let body = if gzipped {
                gunzip(&raw, body_limit).map_err(|e| match e {
                    Gunzip::Limit(n) => body_limit_error(body_limit, n),
                    Gunzip::Io(m) => http_err(format!("bad gzip body: {m}")),
                })?
            } else {
                raw
            };
            Ok(FetchedBody { body, content_type })
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(ScrapeError::Timeout {
                url: url.to_string(),
                timeout_ms: i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX),
            }),
        }
    }
}

fn body_limit_error(limit: u64, actual: u64) -> ScrapeError {
    ScrapeError::LimitExceeded {
        what: "body size limit",
        setting: "body_size_limit",
        limit,
        actual,
    }
}

enum Gunzip {
    Limit(u64),
    Io(String),
}

fn gunzip(raw: &[u8], limit: u64) -> Result<Vec<u8>, Gunzip> {
    let mut out = Vec::with_capacity(raw.len() * 4);
    let mut dec = flate2::read::GzDecoder::new(raw);
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = dec.read(&mut buf).map_err(|e| Gunzip::Io(e.to_string()))?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
        if limit > 0 && out.len() as u64 > limit {
            return Err(Gunzip::Limit(out.len() as u64));
        }
    }
}
