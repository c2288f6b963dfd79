//! Exemplars on the ingester: taken from pushes (both series forms) and
//! served to queriers by `QueryExemplars`.

use tidemark_model::{Exemplar, Labels, TenantId};
use tidemark_proto::ingester as ing;
use tidemark_proto::prometheus as pb;
use tidemark_tsdb::ExemplarAppend;

use crate::IngesterError;
use crate::convert::{labels_from_proto, matchers_from_proto};
use crate::ingester::Shared;
use crate::metrics::{RefusedLabels, TenantLabel};
use crate::service::tenant_of;

/// Exemplars of a packed series. One with undecodable labels is dropped
/// and counted in `dropped`: a bad exemplar fails nothing.
pub(crate) fn from_packed(raw: &[ing::PackedExemplar], dropped: &mut u64) -> Vec<Exemplar> {
    keep_valid(
        raw.iter().map(|e| {
            Labels::from_packed(&e.labels).map(|labels| Exemplar {
                labels,
                t: e.timestamp_ms,
                v: e.value,
            })
        }),
        dropped,
    )
}

/// Exemplars of a series in remote write 1.0's form, as [`from_packed`].
pub(crate) fn from_proto(raw: &[pb::Exemplar], dropped: &mut u64) -> Vec<Exemplar> {
    keep_valid(
        raw.iter().map(|e| {
            labels_from_proto(&e.labels).map(|labels| Exemplar {
                labels,
                t: e.timestamp,
                v: e.value,
            })
        }),
        dropped,
    )
}

/// The decoded exemplars; the others counted in `dropped`.
fn keep_valid<E>(
    decoded: impl Iterator<Item = Result<Exemplar, E>>,
    dropped: &mut u64,
) -> Vec<Exemplar> {
    decoded
        .filter_map(|e| {
            *dropped += u64::from(e.is_err());
            e.ok()
        })
        .collect()
}

/// Counts one push's exemplar outcome in the ingester's metrics.
pub(crate) fn count(shared: &Shared, tenant: &TenantId, appended: &ExemplarAppend, dropped: u64) {
    let metrics = &shared.metrics;
    let tenant = tenant.as_str().to_string();
    metrics
        .ingested_exemplars
        .get_or_create(&TenantLabel {
            tenant: tenant.clone(),
        })
        .inc_by(appended.written as u64);
    let mut by_reason: Vec<(&'static str, u64)> = vec![("exemplar_labels_invalid", dropped)];
    for (_, why) in &appended.refused {
        match by_reason.iter_mut().find(|(r, _)| *r == why.reason()) {
            Some((_, n)) => *n += 1,
            None => by_reason.push((why.reason(), 1)),
        }
    }
    for (reason, n) in by_reason.into_iter().filter(|(_, n)| *n > 0) {
        metrics
            .refused_exemplars
            .get_or_create(&RefusedLabels {
                tenant: tenant.clone(),
                reason,
            })
            .inc_by(n);
    }
}

/// Answers `QueryExemplars` from the tenant's head.
pub(crate) async fn query(
    shared: &Shared,
    req: ing::ExemplarsRequest,
) -> Result<ing::ExemplarsResponse, IngesterError> {
    let heads = shared.heads()?;
    let tenant = tenant_of(&req.tenant)?;
    let sets = req
        .matcher_sets
        .iter()
        .map(|s| matchers_from_proto(&s.matchers))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(head) = heads.get(&tenant) else {
        return Ok(ing::ExemplarsResponse::default());
    };
    let (start, end) = (req.start_ms, req.end_ms);
    let found = tokio::task::spawn_blocking(move || head.exemplars(&sets, start, end))
        .await
        .map_err(|e| IngesterError::Internal(format!("exemplars task failed: {e}")))?;
    Ok(ing::ExemplarsResponse {
        series: found
            .into_iter()
            .map(|s| ing::SeriesExemplars {
                labels: bytes::Bytes::from_owner(s.labels),
                exemplars: s
                    .exemplars
                    .into_iter()
                    .map(|e| ing::PackedExemplar {
                        labels: bytes::Bytes::from_owner(e.labels),
                        timestamp_ms: e.t,
                        value: e.v,
                    })
                    .collect(),
            })
            .collect(),
    })
}
