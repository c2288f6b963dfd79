//! Parser throughput on node_exporter-like output.
//!
//! The body is real node_exporter output when `prometheus-node-exporter` is
//! installed (captured at bench start from a loopback port), else a
//! synthesized body with node_exporter's shape (per-CPU counters, per-device
//! filesystem/network/disk series, HELP/TYPE for every family). Throughput is
//! reported as bytes/s; samples/s is bytes/s divided by bytes per sample,
//! printed at start.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tidemark_model::Labels;
use tidemark_scraper::config::PrometheusConfig;
use tidemark_scraper::parse::{Entry, Format, Parser};
use tidemark_scraper::scrape::{JobContext, ScrapeState};

fn synthesized() -> Vec<u8> {
    let mut s = String::new();
    s.push_str("# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n# TYPE node_cpu_seconds_total counter\n");
    for cpu in 0..16 {
        for mode in [
            "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
        ] {
            s.push_str(&format!(
                "node_cpu_seconds_total{{cpu=\"{cpu}\",mode=\"{mode}\"}} {}.{}\n",
                123456 + cpu * 7,
                cpu * 13 % 100
            ));
        }
    }
    for (fam, help) in [
        (
            "node_filesystem_avail_bytes",
            "Filesystem space available to non-root users in bytes.",
        ),
        ("node_filesystem_size_bytes", "Filesystem size in bytes."),
        (
            "node_filesystem_files_free",
            "Filesystem total free file nodes.",
        ),
    ] {
        s.push_str(&format!("# HELP {fam} {help}\n# TYPE {fam} gauge\n"));
        for (dev, mp, fs) in [
            ("/dev/sda1", "/", "ext4"),
            ("/dev/sda2", "/home", "ext4"),
            ("tmpfs", "/run", "tmpfs"),
            ("/dev/nvme0n1p1", "/boot/efi", "vfat"),
        ] {
            s.push_str(&format!(
                "{fam}{{device=\"{dev}\",fstype=\"{fs}\",mountpoint=\"{mp}\"}} 1.23456789e+11\n"
            ));
        }
    }
    for fam in [
        "node_network_receive_bytes_total",
        "node_network_transmit_bytes_total",
        "node_network_receive_packets_total",
        "node_network_transmit_errs_total",
    ] {
        s.push_str(&format!(
            "# HELP {fam} Network device statistic.\n# TYPE {fam} counter\n"
        ));
        for dev in ["eth0", "lo", "docker0", "veth1a2b3c", "wlan0"] {
            s.push_str(&format!("{fam}{{device=\"{dev}\"}} 9.876543e+09\n"));
        }
    }
    s.push_str("# HELP node_disk_io_time_seconds_total Total seconds spent doing I/Os.\n# TYPE node_disk_io_time_seconds_total counter\n");
    for dev in ["sda", "sdb", "nvme0n1", "dm-0"] {
        s.push_str(&format!(
            "node_disk_io_time_seconds_total{{device=\"{dev}\"}} 4567.123\n"
        ));
    }
    s.push_str("# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.\n# TYPE go_gc_duration_seconds summary\n");
    for q in ["0", "0.25", "0.5", "0.75", "1"] {
        s.push_str(&format!(
            "go_gc_duration_seconds{{quantile=\"{q}\"}} 3.4e-05\n"
        ));
    }
    s.push_str("go_gc_duration_seconds_sum 0.123\ngo_gc_duration_seconds_count 1234\n");
    for i in 0..120 {
        s.push_str(&format!("# HELP node_vmstat_field_{i} /proc/vmstat information field.\n# TYPE node_vmstat_field_{i} untyped\nnode_vmstat_field_{i} {}\n", i * 977));
    }
    s.into_bytes()
}

/// Runs Debian's node exporter on a free loopback port and fetches one body.
fn node_exporter_body() -> Option<Vec<u8>> {
    let bin = "/usr/bin/prometheus-node-exporter";
    if !std::path::Path::new(bin).exists() {
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let mut child = Command::new(bin)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut body = None;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(b) = http_get(port) {
            body = Some(b);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    body
}

fn http_get(port: u16) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(
        b"GET /metrics HTTP/1.0\r\nHost: localhost\r\nAccept: text/plain;version=0.0.4\r\n\r\n",
    )
    .ok()?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).ok()?;
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n")?;
    if !resp.starts_with(b"HTTP/1.0 200") && !resp.starts_with(b"HTTP/1.1 200") {
        return None;
    }
    Some(resp[split + 4..].to_vec())
}

fn count(body: &[u8], format: Format) -> usize {
    let mut p = Parser::new(body, format);
    let mut n = 0;
    while let Some(e) = p.next_entry().unwrap() {
        if let Entry::Series(s) = e {
            black_box(s.value);
            n += 1;
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let (name, body) = match node_exporter_body() {
        Some(b) => ("node_exporter", b),
        None => ("synthesized_node_exporter", synthesized()),
    };
    let samples = count(&body, Format::PrometheusText);
    eprintln!(
        "{name}: {} bytes, {samples} samples, {:.1} bytes/sample",
        body.len(),
        body.len() as f64 / samples as f64
    );
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(samples as u64));
    g.bench_function(format!("text/{name}"), |b| {
        b.iter(|| count(black_box(&body), Format::PrometheusText))
    });
    // The same body as OpenMetrics (node_exporter's text is valid OpenMetrics
    // once `# EOF` is appended, except `untyped`, mapped to `unknown`).
    let om: Vec<u8> = String::from_utf8_lossy(&body)
        .replace(" untyped\n", " unknown\n")
        .into_bytes()
        .into_iter()
        .chain(b"# EOF\n".iter().copied())
        .collect();
    if count_ok(&om) {
        g.bench_function(format!("openmetrics/{name}"), |b| {
            b.iter(|| count(black_box(&om), Format::OpenMetrics))
        });
    }
    g.finish();

    // The whole append path of a steady-state scrape: parse, series cache
    // hits, staleness bookkeeping (label building only on the first scrape).
    let cfg = PrometheusConfig::from_yaml("scrape_configs:\n  - job_name: node\n").unwrap();
    let ctx = JobContext::new(&cfg.scrape_configs[0], &cfg.global);
    let target = Labels::from_pairs([("job", "node"), ("instance", "localhost:9100")]).unwrap();
    let mut state = ScrapeState::new();
    state.append(&ctx, &target, &body, Some("text/plain"), 0);
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(samples as u64));
    let mut ts = 0;
    g.bench_function(format!("steady_state/{name}"), |b| {
        b.iter(|| {
            ts += 15_000;
            state
                .append(&ctx, &target, black_box(&body), Some("text/plain"), ts)
                .samples
                .len()
        })
    });
    g.finish();
}

fn count_ok(body: &[u8]) -> bool {
    let mut p = Parser::new(body, Format::OpenMetrics);
    loop {
        match p.next_entry() {
            Ok(Some(_)) => {}
            Ok(None) => return true,
            Err(e) => {
                eprintln!("skipping the OpenMetrics variant: {e}");
                return false;
            }
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
