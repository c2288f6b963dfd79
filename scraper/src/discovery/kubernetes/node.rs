//! `role: node`: one target per node at its kubelet port, addressed by the
//! first address of type InternalIP, ExternalIP, LegacyHostIP, Hostname
//! (the order Prometheus documents).

use k8s_openapi::api::core::v1::{Node, NodeAddress};

use crate::target::{ADDRESS_LABEL, INSTANCE_LABEL, TargetGroup};

use super::meta::{Labels, add_object_meta, join_host_port, meta, sanitize};

const ADDRESS_ORDER: [&str; 4] = ["InternalIP", "ExternalIP", "LegacyHostIP", "Hostname"];

/// The group of one node; a node with none of those addresses has no target.
pub(super) fn node_group(node: &Node) -> TargetGroup {
    let name = node.metadata.name.clone().unwrap_or_default();
    let mut labels = Labels::from([(
        meta("node_provider_id"),
        node.spec
            .as_ref()
            .and_then(|s| s.provider_id.clone())
            .unwrap_or_default(),
    )]);
    add_object_meta(&mut labels, &node.metadata, "node");
    let status = node.status.as_ref();
    let addresses: &[NodeAddress] = status
        .and_then(|s| s.addresses.as_deref())
        .unwrap_or_default();
    let mut group = TargetGroup {
        source: format!("node/{name}"),
        targets: Vec::new(),
        labels,
    };
    let first = |ty: &str| {
        addresses
            .iter()
            .find(|a| a.type_ == ty)
            .map(|a| a.address.as_str())
    };
    let Some(host) = ADDRESS_ORDER.iter().copied().find_map(first) else {
        tracing::warn!(node = %name, "node has no usable address; no target");
        return group;
    };
    let port = status
        .and_then(|s| s.daemon_endpoints.as_ref())
        .and_then(|d| d.kubelet_endpoint.as_ref())
        .map_or(0, |k| k.port);
    let mut target = Labels::from([
        (ADDRESS_LABEL.to_string(), join_host_port(host, port)),
        (INSTANCE_LABEL.to_string(), name),
    ]);
    for a in addresses {
        target
            .entry(sanitize(&meta(&format!("node_address_{}", a.type_))))
            .or_insert_with(|| a.address.clone());
    }
    group.targets.push(target);
    group
}
