//! The connection to the API server: `kubeconfig_file`, `api_server` with
//! the job-style HTTP client settings, or the in-cluster service account.

use base64::Engine;
use kube::config::{KubeConfigOptions, Kubeconfig};
use secrecy::SecretString;

use crate::config::http::HttpClientConfig;
use crate::config::sd::KubernetesSdConfig;

/// Where a pod's service account keeps its namespace (`own_namespace`).
const OWN_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// The client config `cfg` asks for; the message says what is wrong.
pub(super) async fn client_config(cfg: &KubernetesSdConfig) -> Result<kube::Config, String> {
    if let Some(path) = &cfg.kubeconfig_file {
        let kc =
            Kubeconfig::read_from(path).map_err(|e| format!("kubeconfig_file {path:?}: {e}"))?;
        return kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .map_err(|e| format!("kubeconfig_file {path:?}: {e}"));
    }
    let Some(url) = &cfg.api_server else {
        return kube::Config::incluster().map_err(|e| format!("in-cluster config: {e}"));
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("api_server {url:?}: {e}"))?;
    let mut c = kube::Config::new(uri);
    apply_http_client(&mut c, &cfg.http_client())?;
    Ok(c)
}

fn read(path: &str, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("{what} {path:?}: {e}"))
}

/// Maps the Prometheus HTTP client fields onto kube's config. What kube
/// cannot do (OAuth 2.0, proxies) is refused rather than ignored, so a job
/// never talks to the API server without the credentials it names.
fn apply_http_client(c: &mut kube::Config, h: &HttpClientConfig) -> Result<(), String> {
    if h.oauth2.is_some() {
        return Err("oauth2 is not supported for Kubernetes discovery".into());
    }
    if h.proxy_url.is_some() || h.proxy_from_environment {
        return Err("proxies are not supported for Kubernetes discovery".into());
    }
    if let Some(b) = &h.basic_auth {
        let user = match &b.username_file {
            Some(f) => read(f, "basic_auth.username_file")?,
            None => b.username.clone(),
        };
        let password = match (&b.password, &b.password_file) {
            (Some(p), _) => p.clone(),
            (None, Some(f)) => read(f, "basic_auth.password_file")?,
            (None, None) => String::new(),
        };
        c.auth_info.username = Some(user);
        c.auth_info.password = Some(SecretString::from(password));
    }
    if let Some(a) = &h.authorization {
        if a.kind.eq_ignore_ascii_case("bearer") {
            c.auth_info.token = a.credentials.clone().map(SecretString::from);
            c.auth_info.token_file = a.credentials_file.clone();
        } else {
            let creds = match (&a.credentials, &a.credentials_file) {
                (Some(v), _) => v.clone(),
                (None, Some(f)) => read(f, "authorization.credentials_file")?,
                (None, None) => String::new(),
            };
            let value = http::HeaderValue::from_str(&format!("{} {creds}", a.kind))
                .map_err(|e| format!("authorization: {e}"))?;
            c.headers.push((http::header::AUTHORIZATION, value));
        }
    }
    if let Some(t) = &h.bearer_token {
        c.auth_info.token = Some(SecretString::from(t.clone()));
    }
    if let Some(f) = &h.bearer_token_file {
        c.auth_info.token_file = Some(f.clone());
    }
    let t = &h.tls_config;
    if let Some(f) = &t.ca_file {
        c.root_cert_file = Some(f.into());
    }
    if let Some(pem) = &t.ca {
        c.root_cert = Some(pem_certificates(pem)?);
    }
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    c.auth_info.client_certificate = t.cert_file.clone();
    c.auth_info.client_key = t.key_file.clone();
    c.auth_info.client_certificate_data = t.cert.as_deref().map(b64);
    c.auth_info.client_key_data = t.key.as_deref().map(|k| SecretString::from(b64(k)));
    c.accept_invalid_certs = t.insecure_skip_verify;
    c.tls_server_name = t.server_name.clone();
    Ok(())
}

/// The DER bytes of each `CERTIFICATE` block of a PEM text.
fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        match (line, body.as_mut()) {
            ("-----BEGIN CERTIFICATE-----", None) => body = Some(String::new()),
            ("-----END CERTIFICATE-----", Some(b)) => {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(b.as_bytes())
                    .map_err(|e| format!("tls_config.ca: {e}"))?;
                out.push(der);
                body = None;
            }
            (l, Some(b)) => b.push_str(l),
            _ => {}
        }
    }
    if out.is_empty() {
        return Err("tls_config.ca holds no PEM certificate".into());
    }
    Ok(out)
}

/// The namespaces to watch: `None` for all of them.
pub(super) fn namespaces(cfg: &KubernetesSdConfig) -> Result<Option<Vec<String>>, String> {
    let mut names = cfg.namespaces.names.clone();
    if cfg.namespaces.own_namespace {
        names.push(read(OWN_NAMESPACE_FILE, "own_namespace")?);
    }
    if names.is_empty() {
        return Ok(None);
    }
    names.sort();
    names.dedup();
    Ok(Some(names))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_become_der() {
        let pem = "junk\n-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_certificates(pem).unwrap(), vec![vec![0u8, 1, 2, 3]]);
        assert!(pem_certificates("nothing").is_err());
    }
}
