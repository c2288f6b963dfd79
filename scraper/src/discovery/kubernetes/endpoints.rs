//! `role: endpoints` and `role: endpointslice`: one target per address and
//! port; the service's labels on the group, the pod's labels on targets
//! backed by a pod, and one more target for each container port of such a
//! pod that no endpoint port covers.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, Endpoints, ObjectReference, Pod};
use k8s_openapi::api::discovery::v1::{self as discovery, EndpointSlice};

use crate::target::{ADDRESS_LABEL, TargetGroup};

use super::groups::Ctx;
use super::meta::{
    Labels, NAMESPACE_LABEL, PRESENT, add_object_meta, join_host_port, meta, sanitize,
};
use super::pod::{container_labels, containers, pod_ip, pod_labels};
use super::service::service_labels;

/// The label Kubernetes puts on an endpoint slice naming its service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Pods reached through an endpoint, with the ports already targeted.
#[derive(Default)]
struct SeenPods<'a> {
    pods: BTreeMap<String, (&'a Pod, Vec<i32>)>,
}

impl<'a> SeenPods<'a> {
    /// Resolves `target_ref` to a cached pod, adds the pod's labels (and the
    /// labels of the container declaring `port`) to `target`, and notes the
    /// port. Returns false when the address is not backed by a known pod.
    fn attach(
        &mut self,
        ctx: &Ctx<'a>,
        default_ns: &str,
        target_ref: Option<&ObjectReference>,
        port: Option<i32>,
        target: &mut Labels,
    ) -> bool {
        let Some(r) = target_ref.filter(|r| r.kind.as_deref() == Some("Pod")) else {
            return false;
        };
        let ns = r.namespace.as_deref().unwrap_or(default_ns);
        let name = r.name.as_deref().unwrap_or("");
        let Some(pod) = ctx.store.pods.get(ns, name) else {
            return false;
        };
        target.extend(pod_labels(pod));
        if let Some(port) = port {
            let matching = containers(pod).find_map(|(c, init)| {
                c.ports
                    .iter()
                    .flatten()
                    .find(|p| p.container_port == port)
                    .map(|p| container_labels(c, init, Some(p)))
            });
            if let Some(l) = matching {
                target.extend(l);
            }
        }
        let entry = self
            .pods
            .entry(format!("{ns}/{name}"))
            .or_insert((pod, Vec::new()));
        entry.1.extend(port);
        true
    }

    /// Targets for the container ports of seen pods that no endpoint
    /// port covered.
    fn remaining_ports(&self) -> Vec<Labels> {
        let mut out = Vec::new();
        for (pod, covered) in self.pods.values() {
            let Some(ip) = pod_ip(pod) else { continue };
            for (c, init) in containers(pod) {
                for p in c.ports.iter().flatten() {
                    if covered.contains(&p.container_port) {
                        continue;
                    }
                    let mut t = container_labels(c, init, Some(p));
                    t.insert(
                        ADDRESS_LABEL.to_string(),
                        join_host_port(ip, p.container_port),
                    );
                    t.extend(pod_labels(pod));
                    out.push(t);
                }
            }
        }
        out
    }
}

fn add_service(ctx: &Ctx<'_>, labels: &mut Labels, ns: &str, service: Option<&str>) {
    if let Some(svc) = service.and_then(|s| ctx.store.services.get(ns, s)) {
        labels.extend(service_labels(svc));
    }
}

pub(super) fn endpoints_group(ctx: &Ctx<'_>, eps: &Endpoints) -> TargetGroup {
    let ns = eps.metadata.namespace.clone().unwrap_or_default();
    let name = eps.metadata.name.clone().unwrap_or_default();
    let mut labels = Labels::from([(NAMESPACE_LABEL.to_string(), ns.clone())]);
    add_object_meta(&mut labels, &eps.metadata, "endpoints");
    add_service(ctx, &mut labels, &ns, Some(&name));
    ctx.add_namespace_labels(&mut labels, &ns);
    let mut seen = SeenPods::default();
    let mut targets = Vec::new();
    let mut add = |addr: &EndpointAddress, port: &EndpointPort, ready: &str| {
        let mut t = Labels::from([
            (
                ADDRESS_LABEL.to_string(),
                join_host_port(&addr.ip, port.port),
            ),
            (
                meta("endpoint_port_name"),
                port.name.clone().unwrap_or_default(),
            ),
            (
                meta("endpoint_port_protocol"),
                port.protocol.clone().unwrap_or_default(),
            ),
            (meta("endpoint_ready"), ready.to_string()),
        ]);
        if let Some(n) = &addr.node_name {
            t.insert(meta("endpoint_node_name"), n.clone());
        }
        if let Some(h) = addr.hostname.as_ref().filter(|h| !h.is_empty()) {
            t.insert(meta("endpoint_hostname"), h.clone());
        }
        ctx.add_node_labels(&mut t, addr.node_name.as_deref());
        if let Some(r) = &addr.target_ref {
            t.insert(
                meta("endpoint_address_target_kind"),
                r.kind.clone().unwrap_or_default(),
            );
            t.insert(
                meta("endpoint_address_target_name"),
                r.name.clone().unwrap_or_default(),
            );
        }
        seen.attach(ctx, &ns, addr.target_ref.as_ref(), Some(port.port), &mut t);
        targets.push(t);
    };
    for subset in eps.subsets.iter().flatten() {
        for port in subset.ports.iter().flatten() {
            for a in subset.addresses.iter().flatten() {
                add(a, port, "true");
            }
            for a in subset.not_ready_addresses.iter().flatten() {
                add(a, port, "false");
            }
        }
    }
    targets.extend(seen.remaining_ports());
    TargetGroup {
        source: format!("endpoints/{ns}/{name}"),
        targets,
        labels,
    }
}

pub(super) fn endpointslice_group(ctx: &Ctx<'_>, eps: &EndpointSlice) -> TargetGroup {
    let ns = eps.metadata.namespace.clone().unwrap_or_default();
    let name = eps.metadata.name.clone().unwrap_or_default();
    let mut labels = Labels::from([
        (NAMESPACE_LABEL.to_string(), ns.clone()),
        (meta("endpointslice_address_type"), eps.address_type.clone()),
    ]);
    add_object_meta(&mut labels, &eps.metadata, "endpointslice");
    let service = eps
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SERVICE_NAME_LABEL));
    add_service(ctx, &mut labels, &ns, service.map(String::as_str));
    ctx.add_namespace_labels(&mut labels, &ns);
    let mut seen = SeenPods::default();
    let mut targets = Vec::new();
    for port in eps.ports.iter().flatten() {
        for ep in eps.endpoints.iter().flatten() {
            for addr in &ep.addresses {
                let mut t = slice_target(ctx, addr, ep, port);
                seen.attach(ctx, &ns, ep.target_ref.as_ref(), port.port, &mut t);
                targets.push(t);
            }
        }
    }
    targets.extend(seen.remaining_ports());
    TargetGroup {
        source: format!("endpointslice/{ns}/{name}"),
        targets,
        labels,
    }
}

fn slice_target(
    ctx: &Ctx<'_>,
    addr: &str,
    ep: &discovery::Endpoint,
    port: &discovery::EndpointPort,
) -> Labels {
    let address = port
        .port
        .map_or_else(|| addr.to_string(), |p| join_host_port(addr, p));
    let mut t = Labels::from([(ADDRESS_LABEL.to_string(), address)]);
    let mut opt = |name: &str, v: Option<String>| {
        if let Some(v) = v {
            t.insert(meta(&format!("endpointslice_{name}")), v);
        }
    };
    opt("port_name", port.name.clone());
    opt("port_protocol", port.protocol.clone());
    opt("port", port.port.map(|p| p.to_string()));
    opt("port_app_protocol", port.app_protocol.clone());
    let cond = ep.conditions.as_ref();
    opt(
        "endpoint_conditions_ready",
        cond.and_then(|c| c.ready).map(|b| b.to_string()),
    );
    opt(
        "endpoint_conditions_serving",
        cond.and_then(|c| c.serving).map(|b| b.to_string()),
    );
    opt(
        "endpoint_conditions_terminating",
        cond.and_then(|c| c.terminating).map(|b| b.to_string()),
    );
    opt("endpoint_hostname", ep.hostname.clone());
    opt(
        "address_target_kind",
        ep.target_ref.as_ref().and_then(|r| r.kind.clone()),
    );
    opt(
        "address_target_name",
        ep.target_ref.as_ref().and_then(|r| r.name.clone()),
    );
    opt("endpoint_node_name", ep.node_name.clone());
    opt("endpoint_zone", ep.zone.clone());
    for (k, v) in ep.deprecated_topology.iter().flatten() {
        let n = sanitize(k);
        t.insert(
            meta(&format!("endpointslice_endpoint_topology_{n}")),
            v.clone(),
        );
        t.insert(
            meta(&format!("endpointslice_endpoint_topology_present_{n}")),
            PRESENT.to_string(),
        );
    }
    let node = match &ep.target_ref {
        Some(r) if r.kind.as_deref() == Some("Node") => r.name.as_deref(),
        _ => ep.node_name.as_deref(),
    };
    ctx.add_node_labels(&mut t, node);
    t
}
