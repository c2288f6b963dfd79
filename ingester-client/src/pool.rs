use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use tidemark_proto::ingester::ingester_client::IngesterClient;
use tonic::transport::{Channel, Endpoint};

/// One lazily connected gRPC channel per ingester address.
///
/// Channels reconnect by themselves, so an ingester that restarts is reached
/// again without the pool doing anything; entries are only added.
pub struct ClientPool {
    clients: RwLock<HashMap<String, IngesterClient<Channel>>>,
    max_message_bytes: usize,
    timeout: Duration,
}

impl ClientPool {
    pub fn new(max_message_bytes: usize, timeout: Duration) -> Self {
        ClientPool {
            clients: RwLock::new(HashMap::new()),
            max_message_bytes,
            timeout,
        }
    }

    /// A client for `addr` (`host:port`); cheap to clone and call concurrently.
    pub fn client(&self, addr: &str) -> Result<IngesterClient<Channel>, tonic::transport::Error> {
        if let Some(c) = self
            .clients
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(addr)
        {
            return Ok(c.clone());
        }
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(self.timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        let client = IngesterClient::new(channel)
            .max_decoding_message_size(self.max_message_bytes)
            .max_encoding_message_size(self.max_message_bytes);
        self.clients
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(addr.to_string(), client.clone());
        Ok(client)
    }
}
