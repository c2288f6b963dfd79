//! Asking one ingester directly over its gRPC `Select`, as a querier does:
//! what that one replica holds, with nobody else's copy merged in.

use std::collections::BTreeMap;

use tidemark_proto::ingester::SelectRequest;
use tidemark_proto::ingester::ingester_client::IngesterClient;
use tidemark_proto::prometheus::LabelMatcher;
use tidemark_proto::prometheus::label_matcher::Type;

use crate::prom::Labels;

/// The series named `metric` of `tenant` that the ingester at `grpc_addr`
/// holds with samples in `[start_ms, end_ms]`.
pub fn select(
    grpc_addr: &str,
    tenant: &str,
    metric: &str,
    start_ms: i64,
    end_ms: i64,
) -> Result<BTreeMap<Labels, Vec<(i64, f64)>>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut client = IngesterClient::connect(format!("http://{grpc_addr}"))
            .await
            .map_err(|e| format!("connect {grpc_addr}: {e}"))?
            .max_decoding_message_size(256 << 20);
        let req = SelectRequest {
            tenant: tenant.to_string(),
            start_ms,
            end_ms,
            matchers: vec![LabelMatcher {
                r#type: Type::Eq as i32,
                name: "__name__".into(),
                value: metric.into(),
            }],
            max_series: 0,
        };
        let mut stream = client
            .select(req)
            .await
            .map_err(|e| format!("select on {grpc_addr}: {e}"))?
            .into_inner();
        let mut out = BTreeMap::new();
        while let Some(msg) = stream
            .message()
            .await
            .map_err(|e| format!("select stream from {grpc_addr}: {e}"))?
        {
            for s in msg.series {
                let mut labels: Labels = s.labels.into_iter().map(|l| (l.name, l.value)).collect();
                labels.sort();
                let samples = s.samples.iter().map(|x| (x.timestamp, x.value)).collect();
                out.insert(labels, samples);
            }
        }
        Ok(out)
    })
}
