//! From the cached objects to the target groups of a role, and the
//! `attach_metadata` labels shared by the roles.

use std::str::FromStr;

use crate::target::TargetGroup;

use super::meta::{Labels, add_key_values, add_object_meta};
use super::store::Store;
use super::{endpoints, ingress, node, pod, service};

/// The `role` of a `kubernetes_sd_configs` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Node,
    Pod,
    Service,
    Endpoints,
    EndpointSlice,
    Ingress,
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "node" => Role::Node,
            "pod" => Role::Pod,
            "service" => Role::Service,
            "endpoints" => Role::Endpoints,
            "endpointslice" => Role::EndpointSlice,
            "ingress" => Role::Ingress,
            other => return Err(format!("unknown Kubernetes SD role {other:?}")),
        })
    }
}

/// What a role's builder reads: the cached objects and which metadata
/// to attach.
pub(super) struct Ctx<'a> {
    pub(super) store: &'a Store,
    pub(super) attach_node: bool,
    pub(super) attach_namespace: bool,
}

impl Ctx<'_> {
    /// `attach_metadata.node`: the node's name, labels and annotations.
    pub(super) fn add_node_labels(&self, out: &mut Labels, node_name: Option<&str>) {
        if !self.attach_node {
            return;
        }
        if let Some(n) = node_name.and_then(|n| self.store.nodes.get("", n)) {
            add_object_meta(out, &n.metadata, "node");
        }
    }

    /// `attach_metadata.namespace`: the namespace's labels and annotations.
    pub(super) fn add_namespace_labels(&self, out: &mut Labels, namespace: &str) {
        if !self.attach_namespace {
            return;
        }
        if let Some(n) = self.store.namespaces.get("", namespace) {
            add_key_values(out, "namespace", "label", n.metadata.labels.as_ref());
            add_key_values(
                out,
                "namespace",
                "annotation",
                n.metadata.annotations.as_ref(),
            );
        }
    }

    /// Every group of `role`, one per object, ordered by namespace and name.
    pub(super) fn groups(&self, role: Role) -> Vec<TargetGroup> {
        let s = self.store;
        match role {
            Role::Node => s.nodes.iter().map(node::node_group).collect(),
            Role::Pod => s.pods.iter().map(|p| pod::pod_group(self, p)).collect(),
            Role::Service => s
                .services
                .iter()
                .map(|v| service::service_group(self, v))
                .collect(),
            Role::Endpoints => s
                .endpoints
                .iter()
                .map(|e| endpoints::endpoints_group(self, e))
                .collect(),
            Role::EndpointSlice => s
                .slices
                .iter()
                .map(|e| endpoints::endpointslice_group(self, e))
                .collect(),
            Role::Ingress => s
                .ingresses
                .iter()
                .map(|i| ingress::ingress_group(self, i))
                .collect(),
        }
    }
}
