//! Checkpoints: the live part of old segments, rewritten compactly so the
//! segments themselves can be deleted after a block is cut.
//!
//! `checkpoint.NNNNNNNN/` holds the series records still alive and the
//! samples at or after the cut time from the previous checkpoint and every
//! segment up to and including `NNNNNNNN`, in the same record format as the
//! segments. It is written under a `.tmp` name, fsynced and renamed, so a
//! crash leaves either the old state or the complete new checkpoint.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use tidemark_model::Sample;

use super::record::{
    RecordType, begin_samples, decode_exemplars, decode_samples, decode_series, encode_exemplar,
    encode_sample_group, encode_series, finish_frame,
};
use super::segment::{Next, SegmentReader, list_segments, segment_name, sync_dir};
use crate::TsdbError;
use crate::head::SeriesRef;

const PREFIX: &str = "checkpoint.";
const TMP_SUFFIX: &str = ".tmp";

/// What a checkpoint kept and dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// The last segment the checkpoint covers (its name's number).
    pub checkpoint: u32,
    pub series_kept: u64,
    pub series_dropped: u64,
    pub samples_kept: u64,
    pub samples_dropped: u64,
    /// Segment files deleted because the checkpoint covers them.
    pub segments_deleted: u64,
    /// Size of the checkpoint written.
    pub bytes_written: u64,
}

/// Checkpoint directories of `dir`, oldest first.
pub(crate) fn find_checkpoints(dir: &Path) -> Result<Vec<(u32, PathBuf)>, TsdbError> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| TsdbError::io(dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| TsdbError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(num) = name.strip_prefix(PREFIX)
            && num.len() == 8
            && let Ok(n) = num.parse::<u32>()
        {
            out.push((n, entry.path()));
        }
    }
    out.sort_by_key(|(n, _)| *n);
    Ok(out)
}

/// Removes checkpoints whose writing was interrupted.
pub(crate) fn remove_tmp_checkpoints(dir: &Path) -> Result<(), TsdbError> {
    let rd = std::fs::read_dir(dir).map_err(|e| TsdbError::io(dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| TsdbError::io(dir, e))?;
        let name = entry.file_name();
        if let Some(name) = name.to_str()
            && name.starts_with(PREFIX)
            && name.ends_with(TMP_SUFFIX)
        {
            let p = entry.path();
            std::fs::remove_dir_all(&p).map_err(|e| TsdbError::io(&p, e))?;
        }
    }
    Ok(())
}

/// Writes `checkpoint.{last}` from the previous checkpoint and the segments
/// up to `last`, then deletes what it replaces.
pub(crate) fn run(
    dir: &Path,
    last: u32,
    keep: &dyn Fn(SeriesRef) -> bool,
    mint: i64,
) -> Result<CheckpointStats, TsdbError> {
    let mut stats = CheckpointStats {
        checkpoint: last,
        ..Default::default()
    };
    let previous = find_checkpoints(dir)?;
    let mut sources: Vec<PathBuf> = Vec::new();
    let mut prev_n = None;
    if let Some((n, cp)) = previous.last() {
        sources.extend(list_segments(cp)?.into_iter().map(|(_, p)| p));
        prev_n = Some(*n);
    }
    let segs: Vec<(u32, PathBuf)> = list_segments(dir)?
        .into_iter()
        .filter(|(i, _)| *i <= last)
        .collect();
    sources.extend(
        segs.iter()
            .filter(|(i, _)| prev_n.is_none_or(|n| *i > n))
            .map(|(_, p)| p.clone()),
    );

    let final_dir = dir.join(format!("{PREFIX}{last:08}"));
    let tmp_dir = dir.join(format!("{PREFIX}{last:08}{TMP_SUFFIX}"));
    if tmp_dir.exists() {
        std::fs::remove_dir_all(&tmp_dir).map_err(|e| TsdbError::io(&tmp_dir, e))?;
    }
    std::fs::create_dir_all(&tmp_dir).map_err(|e| TsdbError::io(&tmp_dir, e))?;
    let out_path = tmp_dir.join(segment_name(0));
    let result = write_checkpoint(&sources, &out_path, keep, mint, &mut stats);
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp_dir);
        return Err(e);
    }
    sync_dir(&tmp_dir)?;
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(|e| TsdbError::io(&final_dir, e))?;
    }
    std::fs::rename(&tmp_dir, &final_dir).map_err(|e| TsdbError::io(&final_dir, e))?;
    sync_dir(dir)?;

    for (_, p) in &segs {
        std::fs::remove_file(p).map_err(|e| TsdbError::io(p, e))?;
        stats.segments_deleted += 1;
    }
    for (n, p) in &previous {
        if *n < last {
            std::fs::remove_dir_all(p).map_err(|e| TsdbError::io(p, e))?;
        }
    }
    sync_dir(dir)?;
    tracing::info!(
        dir = %dir.display(),
        checkpoint = last,
        series_kept = stats.series_kept,
        series_dropped = stats.series_dropped,
        samples_kept = stats.samples_kept,
        segments_deleted = stats.segments_deleted,
        "WAL checkpoint written"
    );
    Ok(stats)
}

fn write_checkpoint(
    sources: &[PathBuf],
    out_path: &Path,
    keep: &dyn Fn(SeriesRef) -> bool,
    mint: i64,
    stats: &mut CheckpointStats,
) -> Result<(), TsdbError> {
    let file = File::create(out_path).map_err(|e| TsdbError::io(out_path, e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut payload = Vec::new();
    let mut scratch: Vec<Sample> = Vec::new();
    let mut rec: Vec<u8> = Vec::new();
    for src in sources {
        let mut r = SegmentReader::open(src)?;
        loop {
            let (typ, offset) = match r.next(&mut payload)? {
                Next::Record { typ, offset } => (typ, offset),
                Next::End => break,
                Next::Bad { offset, reason, .. } => {
                    return Err(TsdbError::WalCorruption {
                        segment: r.path().to_path_buf(),
                        offset,
                        reason,
                    });
                }
            };
            rec.clear();
            rec.extend_from_slice(&[0u8; super::record::HEADER_LEN]);
            let decoded = match typ {
                RecordType::Series => decode_series(&payload, |sr, labels| {
                    if keep(sr) {
                        encode_series(&mut rec, sr, &labels);
                        stats.series_kept += 1;
                    } else {
                        stats.series_dropped += 1;
                    }
                }),
                RecordType::Samples => {
                    begin_samples(&mut rec, mint);
                    decode_samples(&payload, &mut scratch, |sr, samples| {
                        if !keep(sr) {
                            stats.samples_dropped += samples.len() as u64;
                            return;
                        }
                        let first = samples.partition_point(|s| s.t < mint);
                        let kept = &samples[first..];
                        stats.samples_dropped += first as u64;
                        if !kept.is_empty() {
                            stats.samples_kept += kept.len() as u64;
                            encode_sample_group(&mut rec, mint, sr, kept.iter().copied());
                        }
                    })
                }
                // Exemplars of live series are kept whatever their age: the
                // exemplar store is bounded by count, not by time.
                RecordType::Exemplars => decode_exemplars(&payload, |sr, e| {
                    if keep(sr) {
                        encode_exemplar(&mut rec, sr, &e);
                    }
                }),
            };
            decoded.map_err(|reason| TsdbError::WalCorruption {
                segment: r.path().to_path_buf(),
                offset,
                reason: reason.to_string(),
            })?;
            let empty_len = match typ {
                RecordType::Series | RecordType::Exemplars => super::record::HEADER_LEN,
                RecordType::Samples => super::record::HEADER_LEN + 8,
            };
            if rec.len() > empty_len {
                finish_frame(&mut rec, 0, typ);
                out.write_all(&rec)
                    .map_err(|e| TsdbError::io(out_path, e))?;
                stats.bytes_written += rec.len() as u64;
            }
        }
    }
    let file = out
        .into_inner()
        .map_err(|e| TsdbError::io(out_path, e.into_error()))?;
    file.sync_all().map_err(|e| TsdbError::io(out_path, e))
}
