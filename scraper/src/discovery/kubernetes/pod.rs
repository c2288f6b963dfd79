//! `role: pod`: one target per declared container port, or one port-less
//! target per container that declares none; init containers included.

use k8s_openapi::api::core::v1::{Container, ContainerPort, ContainerStatus, Pod};

use crate::target::{ADDRESS_LABEL, TargetGroup};

use super::groups::Ctx;
use super::meta::{Labels, NAMESPACE_LABEL, add_object_meta, join_host_port, meta};

/// The pod-level labels every target of (or pointing at) the pod gets.
pub(super) fn pod_labels(pod: &Pod) -> Labels {
    let status = pod.status.as_ref();
    let spec = pod.spec.as_ref();
    let s = |v: Option<&String>| v.cloned().unwrap_or_default();
    let mut l = Labels::from([
        (meta("pod_ip"), s(status.and_then(|x| x.pod_ip.as_ref()))),
        (meta("pod_ready"), ready(pod)),
        (meta("pod_phase"), s(status.and_then(|x| x.phase.as_ref()))),
        (
            meta("pod_node_name"),
            s(spec.and_then(|x| x.node_name.as_ref())),
        ),
        (
            meta("pod_host_ip"),
            s(status.and_then(|x| x.host_ip.as_ref())),
        ),
        (meta("pod_uid"), s(pod.metadata.uid.as_ref())),
    ]);
    add_object_meta(&mut l, &pod.metadata, "pod");
    let controller = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true));
    if let Some(c) = controller {
        if !c.kind.is_empty() {
            l.insert(meta("pod_controller_kind"), c.kind.clone());
        }
        if !c.name.is_empty() {
            l.insert(meta("pod_controller_name"), c.name.clone());
        }
    }
    l
}

/// `true`/`false` from the `Ready` condition, `unknown` without one.
fn ready(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map_or_else(|| "unknown".to_string(), |c| c.status.to_lowercase())
}

/// The pod's containers followed by its init containers, each with
/// whether it is an init container.
pub(super) fn containers(pod: &Pod) -> impl Iterator<Item = (&Container, bool)> {
    let spec = pod.spec.as_ref();
    let regular = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
    let init = spec
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or_default();
    regular
        .iter()
        .map(|c| (c, false))
        .chain(init.iter().map(|c| (c, true)))
}

/// The labels describing container `c` (and its `port`, if any).
pub(super) fn container_labels(c: &Container, init: bool, port: Option<&ContainerPort>) -> Labels {
    let mut l = Labels::from([
        (meta("pod_container_name"), c.name.clone()),
        (
            meta("pod_container_image"),
            c.image.clone().unwrap_or_default(),
        ),
        (meta("pod_container_init"), init.to_string()),
    ]);
    if let Some(p) = port {
        l.insert(
            meta("pod_container_port_name"),
            p.name.clone().unwrap_or_default(),
        );
        l.insert(
            meta("pod_container_port_number"),
            p.container_port.to_string(),
        );
        l.insert(
            meta("pod_container_port_protocol"),
            p.protocol.clone().unwrap_or_default(),
        );
    }
    l
}

fn container_id(pod: &Pod, c: &Container, init: bool) -> String {
    let statuses: Option<&Vec<ContainerStatus>> = pod.status.as_ref().and_then(|s| {
        if init {
            s.init_container_statuses.as_ref()
        } else {
            s.container_statuses.as_ref()
        }
    });
    statuses
        .into_iter()
        .flatten()
        .find(|s| s.name == c.name)
        .and_then(|s| s.container_id.clone())
        .unwrap_or_default()
}

pub(super) fn pod_ip(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .filter(|ip| !ip.is_empty())
}

/// The group of one pod; without a pod IP (starting, evicted) it has no
/// targets.
pub(super) fn pod_group(ctx: &Ctx<'_>, pod: &Pod) -> TargetGroup {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let mut group = TargetGroup {
        source: format!("pod/{ns}/{name}"),
        ..TargetGroup::default()
    };
    let Some(ip) = pod_ip(pod) else {
        return group;
    };
    let mut labels = pod_labels(pod);
    labels.insert(NAMESPACE_LABEL.to_string(), ns.clone());
    ctx.add_node_labels(
        &mut labels,
        pod.spec.as_ref().and_then(|s| s.node_name.as_deref()),
    );
    ctx.add_namespace_labels(&mut labels, &ns);
    group.labels = labels;
    for (c, init) in containers(pod) {
        let id = container_id(pod, c, init);
        let ports = c.ports.as_deref().unwrap_or_default();
        if ports.is_empty() {
            let mut t = container_labels(c, init, None);
            t.insert(ADDRESS_LABEL.to_string(), ip.to_string());
            t.insert(meta("pod_container_id"), id);
            group.targets.push(t);
            continue;
        }
        for p in ports {
            let mut t = container_labels(c, init, Some(p));
            t.insert(
                ADDRESS_LABEL.to_string(),
                join_host_port(ip, p.container_port),
            );
            t.insert(meta("pod_container_id"), id.clone());
            group.targets.push(t);
        }
    }
    group
}
