//! A real S3 API on loopback, inside the test process: `s3s` (the S3
//! protocol, SigV4 authentication) over `s3s-fs` (objects as files), so
//! tests exercise the same `object_store` S3 client as production.

use std::net::SocketAddr;
use std::path::Path;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::{BackendKind, BucketConfig, S3Config};

const ACCESS_KEY: &str = "tidemark-test";
const SECRET_KEY: &str = "tidemark-test-secret";

/// An S3 server serving one bucket from a local directory; stopped on drop.
#[derive(Debug)]
pub struct S3TestServer {
    addr: SocketAddr,
    bucket: String,
    task: JoinHandle<()>,
}

impl S3TestServer {
    /// Serves bucket `bucket` from `<root>/<bucket>` on a free loopback port.
    pub async fn start(root: &Path, bucket: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(root.join(bucket))?;
        let fs =
            s3s_fs::FileSystem::new(root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let mut b = S3ServiceBuilder::new(fs);
        b.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = b.build();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        Ok(S3TestServer {
            addr,
            bucket: bucket.to_string(),
            task,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A bucket configuration that reaches this server.
    pub fn config(&self) -> BucketConfig {
        BucketConfig {
            backend: BackendKind::S3,
            s3: S3Config {
                bucket: self.bucket.clone(),
                endpoint: self.endpoint(),
                region: "us-east-1".into(),
                access_key_id: ACCESS_KEY.into(),
                secret_access_key: SECRET_KEY.into(),
                allow_http: true,
                virtual_hosted_style: false,
            },
            ..BucketConfig::default()
        }
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
