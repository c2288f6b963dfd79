//! The wire contracts of tidemark.
//!
//! - [`prometheus`]: remote write 1.0 (and remote read) messages.
//! - [`write_v2`]: remote write 2.0 (`io.prometheus.write.v2.Request`).
//! - [`ingester`], [`distributor`], [`blocks`], [`ring`]: the gRPC services between roles.
//!
//! Roles talk only through these services, never through each other's
//! internals. Code is generated at build time with a vendored `protoc`.

#![allow(unreachable_pub, clippy::all, clippy::clone_on_ref_ptr)]

pub mod prometheus {
    tonic::include_proto!("prometheus");
}

pub mod io {
    pub mod prometheus {
        pub mod write {
            pub mod v2 {
                tonic::include_proto!("io.prometheus.write.v2");
            }
        }
    }
}

pub mod tidemark {
    pub mod ingester {
        pub mod v1 {
            tonic::include_proto!("tidemark.ingester.v1");
        }
    }
    pub mod distributor {
        pub mod v1 {
            tonic::include_proto!("tidemark.distributor.v1");
        }
    }
    pub mod blocks {
        pub mod v1 {
            tonic::include_proto!("tidemark.blocks.v1");
        }
    }
    pub mod ring {
        pub mod v1 {
            tonic::include_proto!("tidemark.ring.v1");
        }
    }
}

pub use io::prometheus::write::v2 as write_v2;
pub use tidemark::blocks::v1 as blocks;
pub use tidemark::distributor::v1 as distributor;
pub use tidemark::ingester::v1 as ingester;
pub use tidemark::ring::v1 as ring;
