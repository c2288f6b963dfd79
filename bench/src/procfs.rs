//! What a target process costs, read from `/proc/<pid>` and its data
//! directory: the same sources for every target, so the figures compare.

use std::path::Path;

use anyhow::Context;

/// Clock ticks per second of `utime`/`stime` (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

/// User plus system CPU seconds of all `pids` so far.
pub(crate) fn cpu_seconds(pids: &[u32]) -> anyhow::Result<f64> {
    let mut total = 0.0;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("reading /proc/{pid}/stat (is the target running?)"))?;
        total += parse_stat_cpu(&stat).with_context(|| format!("parsing /proc/{pid}/stat"))?;
    }
    Ok(total)
}

/// utime + stime (fields 14 and 15) in seconds; the command name (field
/// 2) may hold spaces and parentheses, so fields are counted after the
/// last `)`.
fn parse_stat_cpu(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS)
}

/// A `/proc/<pid>/status` field in bytes (`VmRSS`, `VmHWM`), summed over `pids`.
pub(crate) fn status_bytes(pids: &[u32], field: &str) -> anyhow::Result<u64> {
    let mut total = 0;
    for pid in pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        total += parse_status_kb(&status, field)
            .with_context(|| format!("no {field} in /proc/{pid}/status"))?
            * 1024;
    }
    Ok(total)
}

fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Bytes allocated on disk under `path` (blocks, so sparse or
/// preallocated files count as what they occupy); 0 when it is absent.
pub(crate) fn disk_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.blocks() * 512;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries.flatten().map(|e| disk_bytes(&e.path())).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_and_memory_fields() {
        let stat =
            "42 (tide (mark) x) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0 100 1000 200";
        assert_eq!(parse_stat_cpu(stat), Some(3.25));
        let status = "Name:\ttidemark\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(204_800));
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(102_400));
        assert_eq!(parse_status_kb(status, "VmSwap"), None);
        let me = [std::process::id()];
        assert!(status_bytes(&me, "VmRSS").unwrap_or(0) > 0);
        assert!(cpu_seconds(&me).is_ok());
    }
}
