//! The `tidemark.ring.v1.Ring` gRPC service every process mounts.

use std::sync::Arc;

use tidemark_proto::ring::ring_server::{Ring, RingServer};
use tidemark_proto::ring::{
    GetRingReply, GetRingRequest, HeartbeatRequest, JoinRequest, MemberRequest, RaftReply,
    RaftRequest, SetStateRequest, TenantOverridesRequest, WriteReply,
};
use tonic::{Request, Response, Status};

use crate::client::{FORWARDED, WriteRpc};
use crate::membership::{Core, Membership};
use crate::network::encode_reply;
use crate::raft::{Raft, TypeConfig};

/// The gRPC service of one process.
#[derive(Clone)]
pub struct RingService {
    core: Arc<Core>,
}

impl Membership {
    /// The tonic service to add to this process's gRPC server.
    pub fn into_grpc_service(&self) -> RingServer<RingService> {
        RingServer::new(RingService {
            core: Arc::clone(&self.core),
        })
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20)
    }
}

impl RingService {
    fn raft(&self) -> Result<&Raft, Status> {
        self.core.raft.as_ref().ok_or_else(|| {
            Status::failed_precondition(format!("{} is not a Raft voter", self.core.node.id))
        })
    }

    async fn write<T>(
        &self,
        req: Request<T>,
        wrap: impl FnOnce(T) -> WriteRpc,
    ) -> Result<Response<WriteReply>, Status> {
        let forwarded = req.metadata().contains_key(FORWARDED);
        let rpc = wrap(req.into_inner());
        self.core
            .propose(rpc, forwarded)
            .await
            .map(Response::new)
            .map_err(Status::from)
    }
}

fn decode<T: serde::de::DeserializeOwned>(req: Request<RaftRequest>) -> Result<T, Status> {
    serde_json::from_slice(&req.into_inner().data)
        .map_err(|e| Status::invalid_argument(format!("cannot decode Raft request: {e}")))
}

#[tonic::async_trait]
impl Ring for RingService {
    async fn append_entries(
        &self,
        req: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let raft = self.raft()?;
        let rpc: openraft::raft::AppendEntriesRequest<TypeConfig> = decode(req)?;
        Ok(Response::new(encode_reply(raft.append_entries(rpc).await)))
    }

    async fn vote(&self, req: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let raft = self.raft()?;
        let rpc: openraft::raft::VoteRequest<u64> = decode(req)?;
        Ok(Response::new(encode_reply(raft.vote(rpc).await)))
    }

    async fn install_snapshot(
        &self,
        req: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let raft = self.raft()?;
        let rpc: openraft::raft::InstallSnapshotRequest<TypeConfig> = decode(req)?;
        Ok(Response::new(encode_reply(
            raft.install_snapshot(rpc).await,
        )))
    }

    async fn join(&self, req: Request<JoinRequest>) -> Result<Response<WriteReply>, Status> {
        self.write(req, WriteRpc::Join).await
    }

    async fn heartbeat(
        &self,
        req: Request<HeartbeatRequest>,
    ) -> Result<Response<WriteReply>, Status> {
        self.write(req, WriteRpc::Heartbeat).await
    }

    async fn set_state(
        &self,
        req: Request<SetStateRequest>,
    ) -> Result<Response<WriteReply>, Status> {
        self.write(req, WriteRpc::SetState).await
    }

    async fn leave(&self, req: Request<MemberRequest>) -> Result<Response<WriteReply>, Status> {
        self.write(req, WriteRpc::Leave).await
    }

    async fn forget(&self, req: Request<MemberRequest>) -> Result<Response<WriteReply>, Status> {
        self.write(req, WriteRpc::Forget).await
    }

    async fn set_tenant_overrides(
        &self,
        req: Request<TenantOverridesRequest>,
    ) -> Result<Response<WriteReply>, Status> {
        self.write(req, WriteRpc::Tenant).await
    }

    async fn get_ring(
        &self,
        _req: Request<GetRingRequest>,
    ) -> Result<Response<GetRingReply>, Status> {
        if self.core.raft.is_none() {
            // A non-voter listed as a seed answers from the voters.
            return self
                .core
                .peers
                .get_ring()
                .await
                .map(Response::new)
                .map_err(Status::from);
        }
        let state = self.core.state();
        let info = self.core.raft_info();
        let state_json = serde_json::to_vec(&*state)
            .map_err(|e| Status::internal(format!("cannot encode ring: {e}")))?;
        Ok(Response::new(GetRingReply {
            state_json,
            applied_index: info.applied_index,
            leader_address: info.leader_address.unwrap_or_default(),
        }))
    }
}
