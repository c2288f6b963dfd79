//! `role: service`: one target per service port, addressed by the
//! service's DNS name (`<name>.<namespace>.svc:<port>`).

use k8s_openapi::api::core::v1::Service;

use crate::target::{ADDRESS_LABEL, TargetGroup};

use super::groups::Ctx;
use super::meta::{Labels, NAMESPACE_LABEL, add_object_meta, meta};

/// The service labels, also attached to endpoints and endpoint slices
/// that belong to the service.
pub(super) fn service_labels(svc: &Service) -> Labels {
    let mut l = Labels::from([(
        NAMESPACE_LABEL.to_string(),
        svc.metadata.namespace.clone().unwrap_or_default(),
    )]);
    add_object_meta(&mut l, &svc.metadata, "service");
    l
}

pub(super) fn service_group(ctx: &Ctx<'_>, svc: &Service) -> TargetGroup {
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let mut labels = service_labels(svc);
    ctx.add_namespace_labels(&mut labels, &ns);
    let spec = svc.spec.as_ref();
    let ty = spec.and_then(|s| s.type_.clone()).unwrap_or_default();
    let mut targets = Vec::new();
    for p in spec.and_then(|s| s.ports.as_deref()).unwrap_or_default() {
        let mut t = Labels::from([
            (
                ADDRESS_LABEL.to_string(),
                format!("{name}.{ns}.svc:{}", p.port),
            ),
            (
                meta("service_port_name"),
                p.name.clone().unwrap_or_default(),
            ),
            (meta("service_port_number"), p.port.to_string()),
            (
                meta("service_port_protocol"),
                p.protocol.clone().unwrap_or_default(),
            ),
            (meta("service_type"), ty.clone()),
        ]);
        if ty == "ExternalName" {
            t.insert(
                meta("service_external_name"),
                spec.and_then(|s| s.external_name.clone())
                    .unwrap_or_default(),
            );
        } else {
            t.insert(
                meta("service_cluster_ip"),
                spec.and_then(|s| s.cluster_ip.clone()).unwrap_or_default(),
            );
        }
        targets.push(t);
    }
    TargetGroup {
        source: format!("svc/{ns}/{name}"),
        targets,
        labels,
    }
}
