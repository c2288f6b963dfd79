//! The label vocabulary shared by every role: the `__meta_kubernetes_`
//! prefix, label-name sanitising, object metadata labels and addresses.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Labels of one target or group, as discovery hands them over.
pub(super) type Labels = BTreeMap<String, String>;

pub(super) const NAMESPACE_LABEL: &str = "__meta_kubernetes_namespace";

/// What Prometheus puts in a `*present_*` label.
pub(super) const PRESENT: &str = "true";

/// `__meta_kubernetes_<rest>`.
pub(super) fn meta(rest: &str) -> String {
    format!("__meta_kubernetes_{rest}")
}

/// A Kubernetes label or annotation key as a Prometheus label-name part:
/// every character outside `[a-zA-Z0-9_]` becomes `_`
/// (`app.kubernetes.io/name` -> `app_kubernetes_io_name`).
pub(super) fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `<role>_name`, and for each label and annotation of `m` the value label
/// and the `*present_*` label, all under `__meta_kubernetes_<role>_`.
pub(super) fn add_object_meta(out: &mut Labels, m: &ObjectMeta, role: &str) {
    out.insert(
        meta(&format!("{role}_name")),
        m.name.clone().unwrap_or_default(),
    );
    add_key_values(out, role, "label", m.labels.as_ref());
    add_key_values(out, role, "annotation", m.annotations.as_ref());
}

pub(super) fn add_key_values(
    out: &mut Labels,
    role: &str,
    kind: &str,
    kv: Option<&BTreeMap<String, String>>,
) {
    for (k, v) in kv.into_iter().flatten() {
        let n = sanitize(k);
        out.insert(meta(&format!("{role}_{kind}_{n}")), v.clone());
        out.insert(
            meta(&format!("{role}_{kind}present_{n}")),
            PRESENT.to_string(),
        );
    }
}

/// `namespace/name`, the key objects are cached and looked up by.
pub(super) fn key(m: &ObjectMeta) -> String {
    object_key(
        m.namespace.as_deref().unwrap_or(""),
        m.name.as_deref().unwrap_or(""),
    )
}

pub(super) fn object_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// `host:port`, with an IPv6 host in brackets as Go's `net.JoinHostPort`.
pub(super) fn join_host_port(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_label_names_and_ipv6_hosts_get_brackets() {
        assert_eq!(sanitize("app.kubernetes.io/name"), "app_kubernetes_io_name");
        assert_eq!(sanitize("prometheus.io-scrape"), "prometheus_io_scrape");
        assert_eq!(join_host_port("10.0.0.1", 80), "10.0.0.1:80");
        assert_eq!(join_host_port("fd00::1", 80), "[fd00::1]:80");
    }
}
