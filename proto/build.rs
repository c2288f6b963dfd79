//! Compiles every `.proto` under `proto/` with a vendored `protoc`, so a
//! fresh machine needs nothing installed.

use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // Build scripts run single-threaded, so changing the environment is sound here.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("PROTOC", protoc)
    };
    let root = PathBuf::from("proto");
    let mut files = Vec::new();
    collect(&root, &mut files)?;
    files.sort();
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .bytes(".tidemark.blocks.v1.BlockFileChunk.data")
        .bytes(".tidemark.ingester.v1.PackedSeries.labels")
        .bytes(".tidemark.ingester.v1.PackedExemplar.labels")
        .bytes(".tidemark.ingester.v1.SeriesExemplars.labels")
        .compile_protos(&files, &[root])?;
    Ok(())
}
