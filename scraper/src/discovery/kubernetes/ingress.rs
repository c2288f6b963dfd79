//! `role: ingress`: one target per path of each rule, addressed by the
//! rule's host; `https` when a TLS entry covers the host.

use k8s_openapi::api::networking::v1::Ingress;

use crate::target::{ADDRESS_LABEL, TargetGroup};

use super::groups::Ctx;
use super::meta::{Labels, NAMESPACE_LABEL, add_object_meta, meta};

pub(super) fn ingress_group(ctx: &Ctx<'_>, ing: &Ingress) -> TargetGroup {
    let ns = ing.metadata.namespace.clone().unwrap_or_default();
    let name = ing.metadata.name.clone().unwrap_or_default();
    let mut labels = Labels::from([(NAMESPACE_LABEL.to_string(), ns.clone())]);
    add_object_meta(&mut labels, &ing.metadata, "ingress");
    let spec = ing.spec.as_ref();
    if let Some(class) = spec.and_then(|s| s.ingress_class_name.clone()) {
        labels.insert(meta("ingress_class_name"), class);
    }
    ctx.add_namespace_labels(&mut labels, &ns);
    let tls_hosts: Vec<&str> = spec
        .and_then(|s| s.tls.as_deref())
        .unwrap_or_default()
        .iter()
        .flat_map(|t| t.hosts.iter().flatten().map(String::as_str))
        .collect();
    let mut targets = Vec::new();
    for rule in spec.and_then(|s| s.rules.as_deref()).unwrap_or_default() {
        let host = rule.host.clone().unwrap_or_default();
        let scheme = if tls_hosts.iter().any(|p| host_matches(p, &host)) {
            "https"
        } else {
            "http"
        };
        let paths: Vec<String> = match &rule.http {
            None => vec!["/".to_string()],
            Some(h) => h
                .paths
                .iter()
                .map(|p| {
                    p.path
                        .clone()
                        .filter(|p| !p.is_empty())
                        .unwrap_or_else(|| "/".to_string())
                })
                .collect(),
        };
        for path in paths {
            targets.push(Labels::from([
                (ADDRESS_LABEL.to_string(), host.clone()),
                (meta("ingress_scheme"), scheme.to_string()),
                (meta("ingress_host"), host.clone()),
                (meta("ingress_path"), path),
            ]));
        }
    }
    TargetGroup {
        source: format!("ingress/{ns}/{name}"),
        targets,
        labels,
    }
}

/// `pattern` equals `host`, or is `*.<rest>` and `host` is one label
/// followed by the same `<rest>`.
fn host_matches(pattern: &str, host: &str) -> bool {
    if pattern == host {
        return true;
    }
    let Some(rest) = pattern.strip_prefix("*.") else {
        return false;
    };
    host.split_once('.').is_some_and(|(_, tail)| tail == rest)
}

#[cfg(test)]
mod tests {
    use super::host_matches;

    #[test]
    fn wildcard_tls_hosts_cover_one_label() {
        assert!(host_matches("a.example.com", "a.example.com"));
        assert!(host_matches("*.example.com", "a.example.com"));
        assert!(!host_matches("*.example.com", "a.b.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
    }
}
