//! Raft RPCs over tonic: the client side openraft calls, and the encoding
//! shared with the server side in [`crate::service`].
//!
//! openraft's messages travel as JSON inside `RaftRequest.data`; errors come
//! back as JSON of `RaftError` in `RaftReply.error`, so the remote node's
//! verdict (e.g. a higher vote) reaches openraft intact.

use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tidemark_proto::ring::ring_client::RingClient;
use tidemark_proto::ring::{RaftReply, RaftRequest};
use tonic::transport::{Channel, Endpoint};

use crate::RingError;
use crate::raft::{RaftNode, TypeConfig};

/// A lazily connected channel to `address` (`host:port`). Connection errors
/// surface on the first call, which is what openraft expects.
pub(crate) fn channel(address: &str) -> Result<Channel, RingError> {
    let endpoint = Endpoint::from_shared(format!("http://{address}"))
        .map_err(|_| RingError::Invalid {
            what: "gRPC address",
            value: address.to_string(),
            expected: "host:port",
        })
        .map(|e| {
            e.connect_timeout(Duration::from_secs(1))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(10))
        })?;
    Ok(endpoint.connect_lazy())
}

/// Creates one [`Network`] per voter openraft replicates to.
#[derive(Debug, Clone, Default)]
pub(crate) struct NetworkFactory;

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = Network;

    async fn new_client(&mut self, target: u64, node: &RaftNode) -> Network {
        Network {
            target,
            client: channel(&node.grpc_address).ok().map(RingClient::new),
            address: node.grpc_address.clone(),
        }
    }
}

/// The connection to one voter.
#[derive(Debug)]
pub(crate) struct Network {
    target: u64,
    address: String,
    client: Option<RingClient<Channel>>,
}

type RpcResult<T, E> = Result<T, RPCError<u64, RaftNode, E>>;

impl Network {
    async fn call<Req, Resp, E>(
        &mut self,
        kind: Kind,
        req: &Req,
        option: &RPCOption,
    ) -> RpcResult<Resp, RaftError<u64, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let Some(client) = self.client.as_mut() else {
            let e = RingError::Invalid {
                what: "voter address",
                value: self.address.clone(),
                expected: "host:port",
            };
            return Err(RPCError::Unreachable(Unreachable::new(&e)));
        };
        let data = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut request = tonic::Request::new(RaftRequest { data });
        request.set_timeout(option.hard_ttl());
        let reply = match kind {
            Kind::Append => client.append_entries(request).await,
            Kind::Vote => client.vote(request).await,
            Kind::Snapshot => client.install_snapshot(request).await,
        };
        let reply: RaftReply = match reply {
            Ok(r) => r.into_inner(),
            Err(status) => {
                return Err(match status.code() {
                    tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
                        RPCError::Unreachable(Unreachable::new(&status))
                    }
                    _ => RPCError::Network(NetworkError::new(&status)),
                });
            }
        };
        decode_reply(self.target, &reply)
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Append,
    Vote,
    Snapshot,
}

// The error type is openraft's, fixed by the `RaftNetwork` trait.
#[allow(clippy::result_large_err)]
fn decode_reply<Resp, E>(target: u64, reply: &RaftReply) -> RpcResult<Resp, RaftError<u64, E>>
where
    Resp: DeserializeOwned,
    E: std::error::Error + DeserializeOwned,
{
    if !reply.error.is_empty() {
        let err: RaftError<u64, E> = serde_json::from_slice(&reply.error)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        return Err(RPCError::RemoteError(RemoteError::new(target, err)));
    }
    serde_json::from_slice(&reply.data).map_err(|e| RPCError::Network(NetworkError::new(&e)))
}

/// Encodes a server-side result into the reply `decode_reply` reads.
pub(crate) fn encode_reply<T: Serialize, E: Serialize>(result: Result<T, E>) -> RaftReply {
    let encoded = match &result {
        Ok(v) => serde_json::to_vec(v).map(|data| RaftReply {
            data,
            error: Vec::new(),
        }),
        Err(e) => serde_json::to_vec(e).map(|error| RaftReply {
            data: Vec::new(),
            error,
        }),
    };
    // Serializing openraft's plain data types cannot fail; if it ever did,
    // an empty reply makes the caller treat the call as a network error.
    encoded.unwrap_or_default()
}

impl RaftNetwork<TypeConfig> for Network {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>, RaftError<u64>> {
        self.call(Kind::Append, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>> {
        self.call(Kind::Snapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>, RaftError<u64>> {
        self.call(Kind::Vote, &rpc, &option).await
    }
}
