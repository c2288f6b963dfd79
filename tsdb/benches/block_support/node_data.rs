//! Deterministic node_exporter-like data for the chunk and block benchmarks,
//! the block size example and the size comparison test: a few hosts, 15 s
//! scrapes with millisecond jitter over one aligned 2 h block, counters that
//! grow by realistic increments (CPU seconds in 1/100 s ticks, bytes,
//! packets), gauges with few distinct values, constant info/size series.

use tidemark_model::{Labels, Sample};

/// Start of the generated range: a multiple of 2 h, so Prometheus tools put
/// everything into one block.
pub(crate) const START_MS: i64 = 1_700_006_400_000;
/// Scrape interval.
pub(crate) const INTERVAL_MS: i64 = 15_000;
/// Scrapes per series (2 h of 15 s).
pub(crate) const SCRAPES: i64 = 480;

/// xorshift64*: small, fast and stable across versions of everything.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

enum Kind {
    /// Counter with a mean increment per scrape, in units of `quantum`.
    Counter { mean: u64, quantum: f64 },
    /// Gauge switching between a few values.
    Gauge { values: Vec<f64>, change_every: u64 },
    /// Never changes.
    Constant(f64),
}

fn series_of(hosts: usize) -> Vec<(Labels, Kind)> {
    let mut out = Vec::new();
    let mut push = |pairs: Vec<(&str, String)>, kind: Kind| {
        let l = Labels::from_pairs(pairs.iter().map(|(n, v)| (*n, v.as_str())))
            .expect("generated labels are valid");
        out.push((l, kind));
    };
    let modes = [
        "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
    ];
    let devices = ["eth0", "eth1", "lo", "docker0", "veth1a2b", "veth3c4d"];
    let disks = ["nvme0n1", "nvme1n1", "sda", "sdb"];
    let mounts = ["/", "/boot", "/var", "/home", "/data", "/run"];
    for h in 0..hosts {
        let inst = format!("node-{h:02}.example.internal:9100");
        let base = |name: &str| {
            vec![
                ("__name__", name.to_string()),
                ("instance", inst.clone()),
                ("job", "node".to_string()),
            ]
        };
        for cpu in 0..16 {
            for mode in modes {
                let mut l = base("node_cpu_seconds_total");
                l.push(("cpu", cpu.to_string()));
                l.push(("mode", mode.to_string()));
                let mean = if mode == "idle" {
                    1400
                } else if mode == "user" || mode == "system" {
                    60
                } else {
                    3
                };
                push(
                    l,
                    Kind::Counter {
                        mean,
                        quantum: 0.01,
                    },
                );
            }
        }
        for dev in devices {
            for (m, mean, q) in [
                ("node_network_receive_bytes_total", 400_000, 1.0),
                ("node_network_transmit_bytes_total", 250_000, 1.0),
                ("node_network_receive_packets_total", 900, 1.0),
                ("node_network_transmit_packets_total", 700, 1.0),
                ("node_network_receive_errs_total", 0, 1.0),
                ("node_network_receive_drop_total", 1, 1.0),
            ] {
                let mut l = base(m);
                l.push(("device", dev.to_string()));
                push(l, Kind::Counter { mean, quantum: q });
            }
            for (m, v) in [
                ("node_network_up", 1.0),
                ("node_network_mtu_bytes", 1500.0),
                ("node_network_speed_bytes", 1.25e9),
            ] {
                let mut l = base(m);
                l.push(("device", dev.to_string()));
                push(l, Kind::Constant(v));
            }
        }
        for disk in disks {
            for (m, mean, q) in [
                ("node_disk_read_bytes_total", 2_000_000, 512.0),
                ("node_disk_written_bytes_total", 5_000_000, 512.0),
                ("node_disk_reads_completed_total", 150, 1.0),
                ("node_disk_writes_completed_total", 400, 1.0),
                ("node_disk_io_time_seconds_total", 800, 0.001),
                ("node_disk_read_time_seconds_total", 300, 0.001),
                ("node_disk_write_time_seconds_total", 900, 0.001),
            ] {
                let mut l = base(m);
                l.push(("device", disk.to_string()));
                push(l, Kind::Counter { mean, quantum: q });
            }
        }
        for mount in mounts {
            for (m, kind) in [
                ("node_filesystem_size_bytes", Kind::Constant(5.36870912e11)),
                (
                    "node_filesystem_avail_bytes",
                    Kind::Gauge {
                        values: vec![2.1e11, 2.100004096e11, 2.099991808e11],
                        change_every: 20,
                    },
                ),
                (
                    "node_filesystem_free_bytes",
                    Kind::Gauge {
                        values: vec![2.3e11, 2.300004096e11],
                        change_every: 40,
                    },
                ),
                ("node_filesystem_files", Kind::Constant(3.2768e7)),
                (
                    "node_filesystem_files_free",
                    Kind::Gauge {
                        values: vec![3.1e7, 3.0999e7],
                        change_every: 60,
                    },
                ),
                ("node_filesystem_readonly", Kind::Constant(0.0)),
                ("node_filesystem_device_error", Kind::Constant(0.0)),
            ] {
                let mut l = base(m);
                l.push((
                    "device",
                    format!("/dev/mapper/vg-{}", mount.trim_start_matches('/')),
                ));
                l.push(("fstype", "ext4".to_string()));
                l.push(("mountpoint", mount.to_string()));
                push(l, kind);
            }
        }
        for (m, kind) in [
            (
                "node_load1",
                Kind::Gauge {
                    values: vec![0.5, 0.62, 0.71, 1.05, 0.93],
                    change_every: 1,
                },
            ),
            (
                "node_load5",
                Kind::Gauge {
                    values: vec![0.61, 0.64, 0.7],
                    change_every: 4,
                },
            ),
            (
                "node_load15",
                Kind::Gauge {
                    values: vec![0.66, 0.67],
                    change_every: 12,
                },
            ),
            (
                "node_memory_MemAvailable_bytes",
                Kind::Gauge {
                    values: vec![1.2e10, 1.2000004096e10, 1.1999997952e10, 1.2000012288e10],
                    change_every: 1,
                },
            ),
            (
                "node_memory_MemFree_bytes",
                Kind::Gauge {
                    values: vec![3.0e9, 3.000004096e9, 2.999995904e9],
                    change_every: 1,
                },
            ),
            ("node_memory_MemTotal_bytes", Kind::Constant(3.3554432e10)),
            (
                "node_memory_Cached_bytes",
                Kind::Gauge {
                    values: vec![8.0e9, 8.000008192e9],
                    change_every: 3,
                },
            ),
            (
                "node_memory_Buffers_bytes",
                Kind::Gauge {
                    values: vec![4.0e8, 4.00004096e8],
                    change_every: 5,
                },
            ),
            (
                "node_procs_running",
                Kind::Gauge {
                    values: vec![1.0, 2.0, 3.0, 4.0],
                    change_every: 1,
                },
            ),
            (
                "node_procs_blocked",
                Kind::Gauge {
                    values: vec![0.0, 1.0],
                    change_every: 7,
                },
            ),
            ("node_boot_time_seconds", Kind::Constant(1.699e9)),
            (
                "node_time_seconds",
                Kind::Counter {
                    mean: 15_000,
                    quantum: 0.001,
                },
            ),
            (
                "node_context_switches_total",
                Kind::Counter {
                    mean: 45_000,
                    quantum: 1.0,
                },
            ),
            (
                "node_intr_total",
                Kind::Counter {
                    mean: 30_000,
                    quantum: 1.0,
                },
            ),
            (
                "node_forks_total",
                Kind::Counter {
                    mean: 120,
                    quantum: 1.0,
                },
            ),
            ("node_entropy_available_bits", Kind::Constant(256.0)),
            ("node_exporter_build_info", Kind::Constant(1.0)),
            ("node_uname_info", Kind::Constant(1.0)),
            ("up", Kind::Constant(1.0)),
            (
                "scrape_duration_seconds",
                Kind::Gauge {
                    values: vec![0.021, 0.023, 0.019, 0.025],
                    change_every: 1,
                },
            ),
            ("scrape_samples_scraped", Kind::Constant(812.0)),
        ] {
            push(base(m), kind);
        }
        for i in 0..40 {
            let mut l = base("node_hwmon_temp_celsius");
            l.push(("chip", format!("platform_coretemp_{}", i / 20)));
            l.push(("sensor", format!("temp{}", i % 20)));
            push(
                l,
                Kind::Gauge {
                    values: vec![42.0, 43.0, 44.0, 45.0],
                    change_every: 2,
                },
            );
        }
    }
    out
}

/// The generated series with their samples, in no particular order.
pub(crate) fn generate(hosts: usize) -> Vec<(Labels, Vec<Sample>)> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    series_of(hosts)
        .into_iter()
        .map(|(labels, kind)| {
            let mut samples = Vec::with_capacity(SCRAPES as usize);
            let mut counter_ticks = rng.below(1 << 30);
            // Keep the last scrape (plus jitter) inside the 2 h block.
            let offset = rng.below(INTERVAL_MS as u64 - 20) as i64;
            for i in 0..SCRAPES {
                // Scrapes are a few milliseconds late, as in real Prometheus.
                let mut t = START_MS + offset + i * INTERVAL_MS + rng.below(4) as i64;
                while !survives_openmetrics(t) {
                    t += 1;
                }
                let v = match &kind {
                    Kind::Counter { mean, quantum } => {
                        if *mean > 0 {
                            counter_ticks += mean / 2 + rng.below(*mean + 1);
                        }
                        counter_ticks as f64 * quantum
                    }
                    Kind::Gauge {
                        values,
                        change_every,
                    } => {
                        let step = (i as u64) / change_every.max(&1);
                        let jitter = if *change_every == 1 {
                            rng.below(values.len() as u64)
                        } else {
                            0
                        };
                        values[((step + jitter) % values.len() as u64) as usize]
                    }
                    Kind::Constant(v) => *v,
                };
                samples.push(Sample::new(t, v));
            }
            (labels, samples)
        })
        .collect()
}

/// Whether Prometheus's OpenMetrics parser gives back `t` from the seconds
/// text `{t / 1000}.{t % 1000:03}`: it computes `int64(seconds * 1000)`,
/// which truncates some millisecond values to one less. The generator skips
/// those, so both blocks of a comparison hold exactly the same samples.
pub(crate) fn survives_openmetrics(t: i64) -> bool {
    let text = format!("{}.{:03}", t.div_euclid(1000), t.rem_euclid(1000));
    text.parse::<f64>()
        .map(|s| (s * 1000.0) as i64 == t)
        .unwrap_or(false)
}

/// Go-parsable text for a value (shortest representation that round-trips).
pub(crate) fn openmetrics_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v:?}")
    }
}

/// The same data as an OpenMetrics text file (timestamps in seconds), for
/// `promtool tsdb create-blocks-from openmetrics`.
pub(crate) fn to_openmetrics(data: &[(Labels, Vec<Sample>)]) -> String {
    use std::fmt::Write;
    let mut sorted: Vec<&(Labels, Vec<Sample>)> = data.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    let mut last_family = String::new();
    for (labels, samples) in sorted {
        let name = labels.metric_name().unwrap_or_default();
        if name != last_family {
            let _ = writeln!(out, "# TYPE {name} unknown");
            last_family = name.to_string();
        }
        let pairs: Vec<String> = labels
            .iter()
            .filter(|(n, _)| *n != "__name__")
            .map(|(n, v)| format!("{n}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect();
        for s in samples {
            let _ = writeln!(
                out,
                "{name}{{{}}} {} {}.{:03}",
                pairs.join(","),
                openmetrics_value(s.v),
                s.t.div_euclid(1000),
                s.t.rem_euclid(1000)
            );
        }
    }
    out.push_str("# EOF\n");
    out
}
