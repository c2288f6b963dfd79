//! Handing a block to a compactor over the `BlockHandoff` gRPC service:
//! ask what it already holds, stream the rest in CRC32C-checked pieces,
//! and learn whether the block is safely in object storage.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tidemark_model::TenantId;
use tidemark_proto::blocks::block_handoff_client::BlockHandoffClient;
use tidemark_proto::blocks::{BlockFileChunk, BlockStatusRequest};
use tidemark_tsdb::BlockId;
use tonic::transport::{Channel, Endpoint};

/// Where the compactor responsible for a tenant is: the seam between the
/// ingester and whatever knows the compactors (static configuration, the
/// ring).
pub trait CompactorLocator: Send + Sync {
    /// The gRPC address (`host:port`) of the compactor that takes
    /// `tenant`'s blocks; `None` keeps them local for now.
    fn address_for(&self, tenant: &TenantId) -> Option<String>;
}

/// One fixed compactor address for every tenant (or none).
#[derive(Debug, Clone, Default)]
pub struct StaticCompactorLocator {
    address: Option<String>,
}

impl StaticCompactorLocator {
    /// Every tenant's blocks go to `address`; an empty one means no compactor.
    pub fn new(address: impl Into<String>) -> Self {
        let address = address.into();
        StaticCompactorLocator {
            address: (!address.is_empty()).then_some(address),
        }
    }
}

impl CompactorLocator for StaticCompactorLocator {
    fn address_for(&self, _tenant: &TenantId) -> Option<String> {
        self.address.clone()
    }
}

/// Why a hand-off did not finish; the block is offered again later.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandoffError {
    #[error("compactor address {address:?} is not valid: {source}")]
    Address {
        address: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("compactor at {address} refused or failed: {status}")]
    Rpc {
        address: String,
        status: tonic::Status,
    },
    #[error("a hand-off task failed: {0}")]
    Task(String),
    #[error("reading block file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a hand-off attempt ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handoff {
    /// The compactor has the block in object storage.
    Uploaded,
    /// The compactor received everything but has not confirmed yet; ask
    /// again later.
    Received,
}

/// One file of a block to send, from `offset` on.
struct Piece {
    path: String,
    abs: PathBuf,
    offset: u64,
    len: usize,
    file_size: u64,
    complete: bool,
}

/// gRPC clients by compactor address, connected lazily; they reconnect by
/// themselves after a compactor restarts.
pub(crate) struct HandoffClient {
    clients: Mutex<HashMap<String, BlockHandoffClient<Channel>>>,
    message_bytes: usize,
}

impl HandoffClient {
    pub(crate) fn new(message_bytes: usize) -> Self {
        HandoffClient {
            clients: Mutex::new(HashMap::new()),
            message_bytes,
        }
    }

    fn client(&self, address: &str) -> Result<BlockHandoffClient<Channel>, HandoffError> {
        if let Some(c) = self.clients.lock().get(address) {
            return Ok(c.clone());
        }
        let channel = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|source| HandoffError::Address {
                address: address.to_string(),
                source,
            })?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .connect_lazy();
        // Room for one piece plus the message's other fields.
        let max = self.message_bytes + (64 << 10);
        let client = BlockHandoffClient::new(channel)
            .max_encoding_message_size(max)
            .max_decoding_message_size(max);
        self.clients
            .lock()
            .insert(address.to_string(), client.clone());
        Ok(client)
    }

    /// Sends block `id` of `tenant` from `dir` to the compactor at
    /// `address`, continuing from what the compactor reports it holds.
    pub(crate) async fn ship(
        &self,
        address: &str,
        tenant: &TenantId,
        id: BlockId,
        dir: &Path,
    ) -> Result<Handoff, HandoffError> {
        let rpc = |status| HandoffError::Rpc {
            address: address.to_string(),
            status,
        };
        let mut client = self.client(address)?;
        let status = client
            .status(BlockStatusRequest {
                tenant: tenant.as_str().to_string(),
                block_id: id.to_string(),
            })
            .await
            .map_err(rpc)?
            .into_inner();
        if status.uploaded {
            return Ok(Handoff::Uploaded);
        }
        let received: HashMap<String, u64> = status
            .files
            .into_iter()
            .map(|f| (f.path, f.received_bytes))
            .collect();
        let dir_owned = dir.to_path_buf();
        let files = tokio::task::spawn_blocking(move || block_files(&dir_owned))
            .await
            .map_err(|e| HandoffError::Task(e.to_string()))??;
        let pieces = plan(&files, &received, self.message_bytes);
        let (tenant, block) = (tenant.as_str().to_string(), id.to_string());
        // A file that cannot be read ends the stream early (the compactor
        // then lacks `complete` and keeps what it got); the error is kept here.
        let failed: Arc<Mutex<Option<HandoffError>>> = Arc::default();
        let slot = Arc::clone(&failed);
        let stream = futures::stream::unfold(pieces.into_iter(), move |mut it| {
            let slot = Arc::clone(&slot);
            let (tenant, block_id) = (tenant.clone(), block.clone());
            async move {
                let p = it.next()?;
                let read = tokio::task::spawn_blocking(move || read_piece(&p).map(|d| (p, d)))
                    .await
                    .unwrap_or_else(|e| Err(HandoffError::Task(e.to_string())));
                match read {
                    Ok((p, data)) => Some((
                        BlockFileChunk {
                            tenant,
                            block_id,
                            path: p.path,
                            offset: p.offset,
                            crc32c: crc32c::crc32c(&data),
                            data: data.into(),
                            file_size: p.file_size,
                            complete: p.complete,
                        },
                        it,
                    )),
                    Err(e) => {
                        *slot.lock() = Some(e);
                        None
                    }
                }
            }
        });
        let answer = client.upload(stream).await;
        if let Some(e) = failed.lock().take() {
            return Err(e);
        }
        let answer = answer.map_err(rpc)?.into_inner();
        Ok(if answer.uploaded {
            Handoff::Uploaded
        } else {
            Handoff::Received
        })
    }
}

/// A block's files as (path inside the block with `/`, absolute path,
/// size), `meta.json` last: a receiver that sees the meta has every other
/// file already.
fn block_files(dir: &Path) -> Result<Vec<(String, PathBuf, u64)>, HandoffError> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, prefix)) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|source| HandoffError::Read {
            path: d.clone(),
            source,
        })?;
        for entry in rd {
            let entry = entry.map_err(|source| HandoffError::Read {
                path: d.clone(),
                source,
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let md = entry.metadata().map_err(|source| HandoffError::Read {
                path: path.clone(),
                source,
            })?;
            let rel = format!("{prefix}{name}");
            if md.is_dir() {
                stack.push((path, format!("{rel}/")));
            } else {
                out.push((rel, path, md.len()));
            }
        }
    }
    out.sort_by(|a, b| (a.0 == "meta.json", &a.0).cmp(&(b.0 == "meta.json", &b.0)));
    Ok(out)
}

/// The pieces still to send: each file from what the compactor holds (from
/// 0 when it reports more than the file has), in messages of at most
/// `message_bytes`; the last piece carries `complete`. When the compactor
/// holds every byte, one empty piece at the end of the last file still
/// tells it the block is whole.
fn plan(
    files: &[(String, PathBuf, u64)],
    received: &HashMap<String, u64>,
    message_bytes: usize,
) -> Vec<Piece> {
    let mut pieces = Vec::new();
    for (path, abs, size) in files {
        let got = received.get(path).copied();
        let mut offset = match got {
            Some(n) if n <= *size => n,
            _ => 0,
        };
        if *size == 0 && got.is_none() {
            pieces.push(Piece {
                path: path.clone(),
                abs: abs.clone(),
                offset: 0,
                len: 0,
                file_size: 0,
                complete: false,
            });
        }
        while offset < *size {
            let len = (*size - offset).min(message_bytes as u64) as usize;
            pieces.push(Piece {
                path: path.clone(),
                abs: abs.clone(),
                offset,
                len,
                file_size: *size,
                complete: false,
            });
            offset += len as u64;
        }
    }
    if pieces.is_empty()
        && let Some((path, abs, size)) = files.last()
    {
        pieces.push(Piece {
            path: path.clone(),
            abs: abs.clone(),
            offset: *size,
            len: 0,
            file_size: *size,
            complete: false,
        });
    }
    if let Some(last) = pieces.last_mut() {
        last.complete = true;
    }
    pieces
}

fn read_piece(p: &Piece) -> Result<Vec<u8>, HandoffError> {
    use std::os::unix::fs::FileExt;
    let read = |source| HandoffError::Read {
        path: p.abs.clone(),
        source,
    };
    let f = std::fs::File::open(&p.abs).map_err(read)?;
    let mut buf = vec![0u8; p.len];
    f.read_exact_at(&mut buf, p.offset).map_err(read)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Vec<(String, PathBuf, u64)> {
        vec![
            (
                "chunks/000001".into(),
                PathBuf::from("/b/chunks/000001"),
                2500,
            ),
            ("index".into(), PathBuf::from("/b/index"), 10),
            ("meta.json".into(), PathBuf::from("/b/meta.json"), 5),
        ]
    }

    #[test]
    fn plan_continues_from_the_reported_offsets() {
        let received: HashMap<String, u64> = [
            ("chunks/000001".to_string(), 2000),
            ("index".to_string(), 10),
        ]
        .into();
        let p = plan(&files(), &received, 1024);
        let got: Vec<(&str, u64, usize, bool)> = p
            .iter()
            .map(|p| (p.path.as_str(), p.offset, p.len, p.complete))
            .collect();
        assert_eq!(
            got,
            vec![
                ("chunks/000001", 2000, 500, false),
                ("meta.json", 0, 5, true)
            ]
        );
    }

    #[test]
    fn plan_restarts_a_file_the_compactor_claims_too_much_of() {
        let received: HashMap<String, u64> = [("index".to_string(), 99)].into();
        let p = plan(&files(), &received, 1024);
        assert_eq!(p.len(), 5);
        assert!(
            p.iter()
                .any(|p| p.path == "index" && p.offset == 0 && p.len == 10)
        );
    }

    #[test]
    fn a_fully_received_block_still_gets_a_complete_message() {
        let received: HashMap<String, u64> = files().into_iter().map(|(p, _, s)| (p, s)).collect();
        let p = plan(&files(), &received, 1024);
        assert_eq!(p.len(), 1);
        assert!(p[0].complete && p[0].len == 0 && p[0].path == "meta.json" && p[0].offset == 5);
    }
}
