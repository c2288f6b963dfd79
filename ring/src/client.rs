//! Calling the voters: membership writes and ring reads with fail-over, and
//! the typed write RPCs that a voter turns into Raft commands.

use std::collections::HashMap;

use tidemark_proto::ring::ring_client::RingClient;
use tidemark_proto::ring::{
    GetRingReply, GetRingRequest, HeartbeatRequest, JoinRequest, MemberRequest, SetStateRequest,
    TenantOverridesRequest, WriteReply,
};
use tonic::transport::Channel;

use crate::RingError;
use crate::member::{MemberState, NodeInfo, Role, TenantLimits};
use crate::network::channel;
use crate::state::Command;

/// Metadata set on a write a voter forwards to the leader, so a write is
/// forwarded at most once (no loops while leadership moves).
pub(crate) const FORWARDED: &str = "x-tidemark-ring-forwarded";

/// A membership write as it travels between nodes.
#[derive(Debug, Clone)]
pub(crate) enum WriteRpc {
    Join(JoinRequest),
    Heartbeat(HeartbeatRequest),
    SetState(SetStateRequest),
    Leave(MemberRequest),
    Forget(MemberRequest),
    Tenant(TenantOverridesRequest),
}

impl WriteRpc {
    pub(crate) fn join(node: &NodeInfo, state: MemberState, tokens: Vec<u32>) -> Self {
        WriteRpc::Join(JoinRequest {
            id: node.id.clone(),
            roles: node.roles.iter().map(|r| r.to_string()).collect(),
            grpc_address: node.grpc_address.clone(),
            http_address: node.http_address.clone(),
            zone: node.zone.clone().unwrap_or_default(),
            state: state.to_string(),
            tokens,
        })
    }

    /// The Raft command, stamped with the leader-side time `now_ms`.
    pub(crate) fn to_command(
        &self,
        now_ms: i64,
        tokens_per_member: u32,
    ) -> Result<Command, RingError> {
        Ok(match self {
            WriteRpc::Join(r) => Command::Join {
                node: NodeInfo {
                    id: non_empty("member id", &r.id)?,
                    roles: r
                        .roles
                        .iter()
                        .map(|s| s.parse::<Role>())
                        .collect::<Result<_, _>>()?,
                    grpc_address: r.grpc_address.clone(),
                    http_address: r.http_address.clone(),
                    zone: Some(r.zone.clone()).filter(|z| !z.is_empty()),
                },
                state: r.state.parse()?,
                tokens: r.tokens.clone(),
                tokens_per_member,
                now_ms,
            },
            WriteRpc::Heartbeat(r) => Command::Heartbeat {
                id: non_empty("member id", &r.id)?,
                now_ms,
                state: if r.state.is_empty() {
                    None
                } else {
                    Some(r.state.parse()?)
                },
            },
            WriteRpc::SetState(r) => Command::SetState {
                id: non_empty("member id", &r.id)?,
                state: r.state.parse()?,
                now_ms,
            },
            WriteRpc::Leave(r) => Command::Leave {
                id: non_empty("member id", &r.id)?,
            },
            WriteRpc::Forget(r) => Command::Forget {
                id: non_empty("member id", &r.id)?,
            },
            WriteRpc::Tenant(r) => Command::SetTenantLimits {
                tenant: non_empty("tenant", &r.tenant)?,
                limits: if r.limits_json.is_empty() {
                    None
                } else {
                    Some(
                        serde_json::from_slice::<TenantLimits>(&r.limits_json)
                            .map_err(|e| RingError::decode("tenant limits", e))?,
                    )
                },
            },
        })
    }

    /// The member id or tenant the write is about.
    pub(crate) fn subject(&self) -> &str {
        match self {
            WriteRpc::Join(r) => &r.id,
            WriteRpc::Heartbeat(r) => &r.id,
            WriteRpc::SetState(r) => &r.id,
            WriteRpc::Leave(r) | WriteRpc::Forget(r) => &r.id,
            WriteRpc::Tenant(r) => &r.tenant,
        }
    }

    pub(crate) async fn send(
        &self,
        channel: Channel,
        forwarded: bool,
    ) -> Result<WriteReply, tonic::Status> {
        let mut client = RingClient::new(channel);
        fn req<T>(m: T, forwarded: bool) -> tonic::Request<T> {
            let mut r = tonic::Request::new(m);
            r.set_timeout(std::time::Duration::from_secs(5));
            if forwarded {
                r.metadata_mut()
                    .insert(FORWARDED, tonic::metadata::MetadataValue::from_static("1"));
            }
            r
        }
        let reply = match self.clone() {
            WriteRpc::Join(m) => client.join(req(m, forwarded)).await,
            WriteRpc::Heartbeat(m) => client.heartbeat(req(m, forwarded)).await,
            WriteRpc::SetState(m) => client.set_state(req(m, forwarded)).await,
            WriteRpc::Leave(m) => client.leave(req(m, forwarded)).await,
            WriteRpc::Forget(m) => client.forget(req(m, forwarded)).await,
            WriteRpc::Tenant(m) => client.set_tenant_overrides(req(m, forwarded)).await,
        };
        reply.map(tonic::Response::into_inner)
    }
}

fn non_empty(what: &'static str, v: &str) -> Result<String, RingError> {
    if v.is_empty() {
        Err(RingError::Invalid {
            what,
            value: String::new(),
            expected: "a non-empty string",
        })
    } else {
        Ok(v.to_string())
    }
}

/// Channels to the voters and seeds, created once.
#[derive(Debug, Clone)]
pub(crate) struct Peers {
    seeds: Vec<String>,
    channels: HashMap<String, Channel>,
}

impl Peers {
    pub(crate) fn new(seeds: &[String], voters: &[String]) -> Result<Self, RingError> {
        let mut channels = HashMap::new();
        for a in seeds.iter().chain(voters) {
            if !channels.contains_key(a) {
                channels.insert(a.clone(), channel(a)?);
            }
        }
        Ok(Peers {
            seeds: seeds.to_vec(),
            channels,
        })
    }

    pub(crate) fn channel(&self, address: &str) -> Result<Channel, RingError> {
        match self.channels.get(address) {
            Some(c) => Ok(c.clone()),
            None => channel(address),
        }
    }

    /// Sends a write to the seeds in turn until one answers. Errors about
    /// the request itself (bad argument, unknown member) are not retried.
    pub(crate) async fn write(&self, rpc: &WriteRpc) -> Result<WriteReply, RingError> {
        let mut last = String::from("no seeds configured");
        for seed in &self.seeds {
            match rpc.send(self.channel(seed)?, false).await {
                Ok(r) => return Ok(r),
                Err(s) => match status_to_error(&s, rpc.subject()) {
                    Some(e) => return Err(e),
                    None => last = format!("{seed}: {}", s.message()),
                },
            }
        }
        Err(RingError::Unavailable { message: last })
    }

    /// Reads the committed ring from the first seed that answers.
    pub(crate) async fn get_ring(&self) -> Result<GetRingReply, RingError> {
        let mut last = String::from("no seeds configured");
        for seed in &self.seeds {
            let mut client = RingClient::new(self.channel(seed)?);
            let mut req = tonic::Request::new(GetRingRequest {});
            req.set_timeout(std::time::Duration::from_secs(2));
            match client.get_ring(req).await {
                Ok(r) => return Ok(r.into_inner()),
                Err(s) => last = format!("{seed}: {}", s.message()),
            }
        }
        Err(RingError::Unavailable { message: last })
    }
}

/// The error a status stands for when retrying elsewhere cannot help.
pub(crate) fn status_to_error(s: &tonic::Status, subject: &str) -> Option<RingError> {
    match s.code() {
        tonic::Code::NotFound => Some(RingError::UnknownMember {
            id: subject.to_string(),
        }),
        tonic::Code::InvalidArgument => Some(RingError::Invalid {
            what: "request",
            value: s.message().to_string(),
            expected: "a valid membership request",
        }),
        _ => None,
    }
}
