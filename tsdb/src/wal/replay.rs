//! Replay: the newest checkpoint, then every later segment, one record at
//! a time.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use super::checkpoint::{find_checkpoints, remove_tmp_checkpoints};
use super::record::{RecordType, decode_exemplars, decode_samples, decode_series};
use super::segment::{Next, SegmentReader, check_contiguous, list_segments, sync_dir};
use super::{WalOptions, WalRecord};
use crate::TsdbError;

/// What opening a WAL found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// The checkpoint replayed first, if any (its last covered segment).
    pub checkpoint: Option<u32>,
    /// Segment files replayed after the checkpoint.
    pub segments: u32,
    /// Valid records read.
    pub records: u64,
    /// Series entries read.
    pub series: u64,
    /// Samples read.
    pub samples: u64,
    /// Exemplars read.
    pub exemplars: u64,
    /// Torn final records cut off (0 or 1): the write of a batch that was
    /// interrupted by a crash and therefore never acknowledged.
    pub torn_records: u64,
    /// Bytes removed with the torn record.
    pub torn_bytes: u64,
    /// Set when [`WalOptions::repair`] truncated the log at corruption.
    pub repaired: Option<RepairReport>,
}

/// What a repair threw away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// The segment holding the first bad record.
    pub segment: PathBuf,
    /// Byte offset of that record; the segment now ends here.
    pub offset: u64,
    /// Why the record was refused.
    pub reason: String,
    /// Bytes discarded: the rest of that segment plus every later segment.
    pub bytes_discarded: u64,
    /// Later segment files deleted.
    pub segments_deleted: u32,
}

/// Replays `dir` into `on_record` and returns the stats and the index for
/// the next segment to write.
pub(crate) fn replay(
    dir: &Path,
    opts: &WalOptions,
    mut on_record: impl FnMut(WalRecord<'_>),
) -> Result<(ReplayStats, u32), TsdbError> {
    let mut stats = ReplayStats::default();
    remove_tmp_checkpoints(dir)?;
    let checkpoint = find_checkpoints(dir)?.pop();
    let mut payload = Vec::new();
    let mut scratch = Vec::new();
    if let Some((n, cp_dir)) = &checkpoint {
        stats.checkpoint = Some(*n);
        let segs = list_segments(cp_dir)?;
        check_contiguous(cp_dir, &segs)?;
        for (_, path) in &segs {
            // A checkpoint is fsynced before it is renamed into place, so
            // any damage in it is corruption, never a torn write.
            let mut r = SegmentReader::open(path)?;
            loop {
                match r.next(&mut payload)? {
                    Next::Record { typ, offset } => apply(
                        path,
                        typ,
                        offset,
                        &payload,
                        &mut scratch,
                        &mut stats,
                        &mut on_record,
                    )?,
                    Next::End => break,
                    Next::Bad { offset, reason, .. } => {
                        let reason = format!("in checkpoint: {reason}");
                        if !opts.repair {
                            return Err(TsdbError::WalCorruption {
                                segment: path.clone(),
                                offset,
                                reason,
                            });
                        }
                        // Keep what precedes the damage and go on with the
                        // segments: samples of series whose record was lost
                        // are skipped as unknown.
                        let discarded = r.len() - offset;
                        drop(r);
                        truncate(path, offset)?;
                        tracing::error!(
                            segment = %path.display(),
                            offset,
                            reason,
                            bytes_discarded = discarded,
                            "repaired corrupt WAL checkpoint by truncating it; data after the corruption is lost"
                        );
                        stats.repaired = Some(RepairReport {
                            segment: path.clone(),
                            offset,
                            reason,
                            bytes_discarded: discarded,
                            segments_deleted: 0,
                        });
                        break;
                    }
                }
            }
        }
    }

    let mut segs = list_segments(dir)?;
    if let Some((n, _)) = &checkpoint {
        // Segments the checkpoint covers but whose deletion was interrupted.
        for (i, path) in segs.iter().filter(|(i, _)| i <= n) {
            tracing::info!(
                segment = i,
                "removing WAL segment already covered by a checkpoint"
            );
            std::fs::remove_file(path).map_err(|e| TsdbError::io(path, e))?;
        }
        segs.retain(|(i, _)| i > n);
        if let Some((first, _)) = segs.first()
            && *first != n + 1
        {
            return Err(TsdbError::WalMissingSegment {
                dir: dir.to_path_buf(),
                missing: n + 1,
                found: *first,
            });
        }
    }
    check_contiguous(dir, &segs)?;
    let next_segment = segs
        .last()
        .map(|(i, _)| i + 1)
        .or(checkpoint.as_ref().map(|(n, _)| n + 1))
        .unwrap_or(0);

    let count = segs.len();
    for (pos, (_, path)) in segs.iter().enumerate() {
        stats.segments += 1;
        let is_last = pos + 1 == count;
        let mut r = SegmentReader::open(path)?;
        let bad = loop {
            match r.next(&mut payload)? {
                Next::Record { typ, offset } => {
                    match apply(
                        path,
                        typ,
                        offset,
                        &payload,
                        &mut scratch,
                        &mut stats,
                        &mut on_record,
                    ) {
                        Ok(()) => {}
                        Err(TsdbError::WalCorruption { reason, .. }) => {
                            break Some((offset, reason, false));
                        }
                        Err(e) => return Err(e),
                    }
                }
                Next::End => break None,
                Next::Bad {
                    offset,
                    reason,
                    torn,
                } => break Some((offset, reason, torn)),
            }
        };
        let Some((offset, reason, torn)) = bad else {
            continue;
        };
        let file_len = r.len();
        drop(r);
        if torn && is_last {
            truncate(path, offset)?;
            stats.torn_records += 1;
            stats.torn_bytes = file_len - offset;
            tracing::warn!(
                segment = %path.display(),
                offset,
                bytes = file_len - offset,
                reason,
                "truncated a torn final WAL record (an unacknowledged write interrupted by a crash)"
            );
            break;
        }
        if !opts.repair {
            return Err(TsdbError::WalCorruption {
                segment: path.clone(),
                offset,
                reason,
            });
        }
        let mut discarded = file_len - offset;
        truncate(path, offset)?;
        let mut deleted = 0;
        for (_, later) in &segs[pos + 1..] {
            let len = std::fs::metadata(later)
                .map_err(|e| TsdbError::io(later, e))?
                .len();
            std::fs::remove_file(later).map_err(|e| TsdbError::io(later, e))?;
            discarded += len;
            deleted += 1;
        }
        sync_dir(dir)?;
        tracing::error!(
            segment = %path.display(),
            offset,
            reason,
            bytes_discarded = discarded,
            segments_deleted = deleted,
            "repaired corrupt WAL by truncating it; data after the corruption is lost"
        );
        stats.repaired = Some(RepairReport {
            segment: path.clone(),
            offset,
            reason,
            bytes_discarded: discarded,
            segments_deleted: deleted,
        });
        // The repaired segment is now the last one; the next starts after it.
        let next = segs[pos].0 + 1;
        return Ok((stats, next));
    }
    Ok((stats, next_segment))
}

fn apply(
    path: &Path,
    typ: RecordType,
    offset: u64,
    payload: &[u8],
    scratch: &mut Vec<tidemark_model::Sample>,
    stats: &mut ReplayStats,
    on_record: &mut impl FnMut(WalRecord<'_>),
) -> Result<(), TsdbError> {
    stats.records += 1;
    let res = match typ {
        RecordType::Series => decode_series(payload, |r, labels| {
            stats.series += 1;
            on_record(WalRecord::Series { r, labels });
        }),
        RecordType::Samples => decode_samples(payload, scratch, |r, samples| {
            stats.samples += samples.len() as u64;
            on_record(WalRecord::Samples { r, samples });
        }),
        RecordType::Exemplars => decode_exemplars(payload, |r, exemplar| {
            stats.exemplars += 1;
            on_record(WalRecord::Exemplar { r, exemplar });
        }),
    };
    res.map_err(|reason| TsdbError::WalCorruption {
        segment: path.to_path_buf(),
        offset,
        reason: format!("undecodable {typ:?} record: {reason}"),
    })
}

fn truncate(path: &Path, len: u64) -> Result<(), TsdbError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| TsdbError::io(path, e))?;
    f.set_len(len).map_err(|e| TsdbError::io(path, e))?;
    f.sync_all().map_err(|e| TsdbError::io(path, e))
}
