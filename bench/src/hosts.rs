//! Synthetic hosts that look like what node_exporter and a small HTTP
//! service expose: the same metric names, label sets and value shapes
//! (counters in CPU ticks and bytes with occasional resets, slow and noisy
//! gauges, constants, classic histograms), so that compression, index size
//! and query cost resemble a real deployment rather than random numbers.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::encode::encode_labels;

/// Bucket bounds of the service histogram (Prometheus client defaults).
const HTTP_BOUNDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const CPU_MODES: &[(&str, f64)] = &[
    ("idle", 0.70),
    ("iowait", 0.02),
    ("irq", 0.003),
    ("nice", 0.002),
    ("softirq", 0.01),
    ("steal", 0.005),
    ("system", 0.06),
    ("user", 0.15),
];
const CPUS: usize = 4;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// How one metric (or one classic histogram) produces values.
#[derive(Debug, Clone)]
enum Shape {
    /// Grows by about `rate` per second (±50 %), rounded to `round`; back
    /// to 0 when the host restarts.
    Counter { rate: f64, round: f64, value: f64 },
    /// Moves around `base` with a slow sine of `amplitude` plus `noise`.
    Gauge {
        base: f64,
        amplitude: f64,
        period_s: f64,
        noise: f64,
        round: f64,
    },
    /// Never changes (sizes, info metrics).
    Constant(f64),
    /// The host's wall clock (`node_time_seconds`).
    Clock,
    /// A classic histogram: one `_bucket` series per bound plus `+Inf`,
    /// then `_sum`, then `_count`; `rate` observations per second with a
    /// log-normal latency around `median` seconds.
    Histogram {
        rate: f64,
        median: f64,
        counts: Vec<f64>,
        sum: f64,
    },
}

impl Shape {
    fn series(&self) -> usize {
        match self {
            Shape::Histogram { counts, .. } => counts.len() + 2,
            _ => 1,
        }
    }

    fn reset(&mut self) {
        match self {
            Shape::Counter { value, .. } => *value = 0.0,
            Shape::Histogram { counts, sum, .. } => {
                counts.iter_mut().for_each(|c| *c = 0.0);
                *sum = 0.0;
            }
            _ => {}
        }
    }

    /// Advances by `dt` seconds to time `t_s` and appends this shape's
    /// values to `out`.
    fn step(&mut self, rng: &mut StdRng, t_s: f64, dt: f64, out: &mut Vec<f64>) {
        match self {
            Shape::Counter { rate, round, value } => {
                let inc = *rate * dt * rng.gen_range(0.5..1.5);
                *value += (inc / *round).round() * *round;
                out.push(*value);
            }
            Shape::Gauge {
                base,
                amplitude,
                period_s,
                noise,
                round,
            } => {
                let phase = (t_s / *period_s) * std::f64::consts::TAU;
                let v = *base + *amplitude * phase.sin() + *noise * rng.gen_range(-1.0..1.0);
                out.push(((v / *round).round() * *round).max(0.0));
            }
            Shape::Constant(v) => out.push(*v),
            Shape::Clock => out.push((t_s * 1000.0).round() / 1000.0),
            Shape::Histogram {
                rate,
                median,
                counts,
                sum,
            } => {
                let n = (*rate * dt * rng.gen_range(0.5..1.5)).round() as usize;
                for _ in 0..n {
                    // Log-normal around the median: exp(N(0, 1)) via a
                    // sum of uniforms (close enough, and cheap).
                    let z: f64 = (0..4).map(|_| rng.gen_range(-1.0..1.0)).sum::<f64>() * 0.87;
                    let v = *median * z.exp();
                    *sum += v;
                    let first = HTTP_BOUNDS.partition_point(|b| *b < v);
                    counts[first..].iter_mut().for_each(|c| *c += 1.0);
                }
                out.extend_from_slice(counts);
                out.push((*sum * 1e6).round() / 1e6);
                out.push(counts[counts.len() - 1]);
            }
        }
    }
}

/// One scraped target: its series' encoded labels and their value state.
#[derive(Debug)]
pub(crate) struct Host {
    rng: StdRng,
    shapes: Vec<Shape>,
    /// Protobuf-encoded labels of every series, in value order.
    labels: Vec<Vec<u8>>,
    /// Probability that the host restarts (counters reset) at a scrape.
    reset_prob: f64,
}

/// Label sets and shapes of one host before encoding.
struct Builder {
    common: Vec<(String, String)>,
    labels: Vec<Vec<(String, String)>>,
    shapes: Vec<Shape>,
}

impl Builder {
    fn add(&mut self, name: &str, extra: &[(&str, &str)], shape: Shape) {
        if let Shape::Histogram { .. } = shape {
            let bounds = HTTP_BOUNDS
                .iter()
                .map(|b| b.to_string())
                .chain(["+Inf".to_string()]);
            for le in bounds {
                let mut ls = extra.to_vec();
                ls.push(("le", &le));
                self.labels.push(self.set(&format!("{name}_bucket"), &ls));
            }
            self.labels.push(self.set(&format!("{name}_sum"), extra));
            self.labels.push(self.set(&format!("{name}_count"), extra));
        } else {
            self.labels.push(self.set(name, extra));
        }
        self.shapes.push(shape);
    }

    fn set(&self, name: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut ls: Vec<(String, String)> = self.common.clone();
        ls.push(("__name__".into(), name.into()));
        ls.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        ls.sort();
        ls
    }
}

fn counter(rate: f64, round: f64) -> Shape {
    Shape::Counter {
        rate,
        round,
        value: 0.0,
    }
}

fn gauge(base: f64, amplitude: f64, period_s: f64, noise: f64, round: f64) -> Shape {
    Shape::Gauge {
        base,
        amplitude,
        period_s,
        noise,
        round,
    }
}

impl Host {
    /// Builds host number `id` (its `instance` label); `reset_prob` is the
    /// chance per scrape that it restarts. The same id gives the same host.
    pub(crate) fn new(id: u64, reset_prob: f64) -> Host {
        let mut rng = StdRng::seed_from_u64(id);
        let mut b = Builder {
            common: vec![
                ("instance".into(), format!("host-{id:06}:9100")),
                ("job".into(), "node".into()),
                ("datacenter".into(), format!("dc-{}", id % 3)),
            ],
            labels: Vec::new(),
            shapes: Vec::new(),
        };
        for cpu in 0..CPUS {
            let cpu = cpu.to_string();
            for (mode, rate) in CPU_MODES {
                let rate = rate * rng.gen_range(0.5..1.5);
                b.add(
                    "node_cpu_seconds_total",
                    &[("cpu", &cpu), ("mode", mode)],
                    counter(rate, 0.01),
                );
            }
        }
        let mem = 16.0 * GIB;
        b.add("node_memory_MemTotal_bytes", &[], Shape::Constant(mem));
        for (name, frac, amp) in [
            ("MemFree", 0.2, 0.05),
            ("MemAvailable", 0.5, 0.1),
            ("Buffers", 0.02, 0.005),
            ("Cached", 0.3, 0.05),
            ("Active", 0.35, 0.05),
            ("Inactive", 0.2, 0.03),
            ("Slab", 0.03, 0.002),
            ("Dirty", 0.0005, 0.0004),
        ] {
            let period = rng.gen_range(1800.0..7200.0);
            b.add(
                &format!("node_memory_{name}_bytes"),
                &[],
                gauge(mem * frac, mem * amp, period, mem * amp * 0.1, 4096.0),
            );
        }
        b.add(
            "node_memory_SwapTotal_bytes",
            &[],
            Shape::Constant(2.0 * GIB),
        );
        b.add(
            "node_memory_SwapFree_bytes",
            &[],
            Shape::Constant(2.0 * GIB),
        );
        for (name, noise) in [
            ("node_load1", 0.8),
            ("node_load5", 0.3),
            ("node_load15", 0.1),
        ] {
            b.add(name, &[], gauge(1.5, 1.0, 3600.0, noise, 0.01));
        }
        for (mount, dev, size) in [
            ("/", "/dev/sda1", 50.0),
            ("/boot", "/dev/sda2", 1.0),
            ("/var", "/dev/sdb1", 200.0),
            ("/home", "/dev/sdb2", 100.0),
        ] {
            let l = [("device", dev), ("fstype", "ext4"), ("mountpoint", mount)];
            let size = size * GIB;
            b.add("node_filesystem_size_bytes", &l, Shape::Constant(size));
            for name in ["node_filesystem_free_bytes", "node_filesystem_avail_bytes"] {
                let period = rng.gen_range(20_000.0..90_000.0);
                b.add(
                    name,
                    &l,
                    gauge(size * 0.4, size * 0.05, period, 0.0, 4096.0),
                );
            }
            b.add("node_filesystem_files", &l, Shape::Constant(size / 16384.0));
            let files = gauge(size / 20000.0, 1000.0, 50_000.0, 10.0, 1.0);
            b.add("node_filesystem_files_free", &l, files);
            b.add("node_filesystem_readonly", &l, Shape::Constant(0.0));
        }
        for dev in ["sda", "sdb"] {
            let l = [("device", dev)];
            let busy = rng.gen_range(0.2..3.0);
            b.add(
                "node_disk_reads_completed_total",
                &l,
                counter(20.0 * busy, 1.0),
            );
            b.add(
                "node_disk_writes_completed_total",
                &l,
                counter(50.0 * busy, 1.0),
            );
            b.add("node_disk_read_bytes_total", &l, counter(4e5 * busy, 512.0));
            b.add(
                "node_disk_written_bytes_total",
                &l,
                counter(1e6 * busy, 512.0),
            );
            b.add(
                "node_disk_io_time_seconds_total",
                &l,
                counter(0.05 * busy, 0.001),
            );
            b.add(
                "node_disk_read_time_seconds_total",
                &l,
                counter(0.02 * busy, 0.001),
            );
            b.add(
                "node_disk_write_time_seconds_total",
                &l,
                counter(0.04 * busy, 0.001),
            );
            b.add("node_disk_io_now", &l, gauge(0.5, 0.5, 600.0, 1.0, 1.0));
        }
        for dev in ["eth0", "eth1", "lo"] {
            let l = [("device", dev)];
            let busy = rng.gen_range(0.1..5.0);
            for dir in ["receive", "transmit"] {
                let name = |m: &str| format!("node_network_{dir}_{m}_total");
                b.add(&name("bytes"), &l, counter(2e5 * busy, 1.0));
                b.add(&name("packets"), &l, counter(300.0 * busy, 1.0));
                b.add(&name("errs"), &l, counter(0.001, 1.0));
                b.add(&name("drop"), &l, counter(0.01 * busy, 1.0));
            }
        }
        b.add("node_context_switches_total", &[], counter(3000.0, 1.0));
        b.add("node_intr_total", &[], counter(1500.0, 1.0));
        b.add("node_forks_total", &[], counter(5.0, 1.0));
        b.add("node_procs_running", &[], gauge(2.0, 1.0, 300.0, 2.0, 1.0));
        b.add("node_procs_blocked", &[], gauge(0.0, 0.5, 300.0, 1.0, 1.0));
        let boot = 1.7e9 + (id % 100_000) as f64;
        b.add("node_boot_time_seconds", &[], Shape::Constant(boot));
        b.add("node_time_seconds", &[], Shape::Clock);
        b.add(
            "node_netstat_Tcp_CurrEstab",
            &[],
            gauge(80.0, 30.0, 3600.0, 5.0, 1.0),
        );
        b.add(
            "node_sockstat_TCP_inuse",
            &[],
            gauge(60.0, 20.0, 3600.0, 5.0, 1.0),
        );
        let uname = [("nodename", "host"), ("release", "6.1.0-13-amd64")];
        b.add("node_uname_info", &uname, Shape::Constant(1.0));
        for (handler, rate, median) in [
            ("/api/v1/query", 2.0, 0.05),
            ("/api/v1/push", 20.0, 0.01),
            ("/metrics", 0.1, 0.003),
        ] {
            let l = [("handler", handler), ("method", "GET")];
            let shape = Shape::Histogram {
                rate,
                median,
                counts: vec![0.0; HTTP_BOUNDS.len() + 1],
                sum: 0.0,
            };
            b.add("http_request_duration_seconds", &l, shape);
            for (code, frac) in [("200", 0.99), ("500", 0.01)] {
                let l = [("code", code), ("handler", handler)];
                b.add("http_requests_total", &l, counter(rate * frac, 1.0));
            }
        }
        let labels = b.labels.iter().map(|l| encode_labels(l)).collect();
        Host {
            rng,
            shapes: b.shapes,
            labels,
            reset_prob,
        }
    }

    /// Series per host (the same for every host).
    pub(crate) fn series_per_host() -> usize {
        Host::new(0, 0.0).labels.len()
    }

    /// Encoded label sets, one per series, in the order of [`Host::scrape`]'s values.
    pub(crate) fn labels(&self) -> &[Vec<u8>] {
        &self.labels
    }

    /// One scrape at `t_ms`, `dt` seconds after the previous one: appends
    /// one value per series to `out` and returns the scrape's timestamp
    /// (`t_ms`, or a few ms late for 5 % of scrapes, as real scrapes are).
    pub(crate) fn scrape(&mut self, t_ms: i64, dt: f64, out: &mut Vec<f64>) -> i64 {
        if self.rng.gen_bool(self.reset_prob) {
            self.shapes.iter_mut().for_each(Shape::reset);
        }
        let t_s = t_ms as f64 / 1000.0;
        for s in &mut self.shapes {
            s.step(&mut self.rng, t_s, dt, out);
        }
        if self.rng.gen_bool(0.05) {
            t_ms + self.rng.gen_range(3..=20)
        } else {
            t_ms
        }
    }

    /// Number of series (= values per scrape).
    pub(crate) fn len(&self) -> usize {
        self.shapes.iter().map(Shape::series).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_of(labels: &[u8]) -> String {
        crate::encode::tests::decode_labels(labels)
            .into_iter()
            .find(|(n, _)| n == "__name__")
            .map(|(_, v)| v)
            .unwrap_or_default()
    }

    #[test]
    fn hosts_look_like_node_exporter() {
        let h = Host::new(7, 0.0);
        assert_eq!(h.len(), h.labels().len());
        assert_eq!(Host::series_per_host(), h.len());
        let names: Vec<String> = h.labels().iter().map(|l| name_of(l)).collect();
        assert_eq!(
            names
                .iter()
                .filter(|n| *n == "node_cpu_seconds_total")
                .count(),
            32
        );
        for n in [
            "node_memory_MemAvailable_bytes",
            "node_load1",
            "node_filesystem_avail_bytes",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} missing");
        }
        let buckets = names
            .iter()
            .filter(|n| *n == "http_request_duration_seconds_bucket");
        assert_eq!(buckets.count(), 3 * 12);
        let labels = crate::encode::tests::decode_labels(&h.labels()[0]);
        let mut sorted = labels.clone();
        sorted.sort();
        assert_eq!(labels, sorted, "labels must be sorted by name");
        assert!(labels.contains(&("instance".into(), "host-000007:9100".into())));
        // Distinct label sets within a host.
        let mut all = h.labels().to_vec();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), h.len());
    }

    /// Scrapes `n` times and returns the values per series.
    fn series_values(h: &mut Host, n: usize) -> Vec<Vec<f64>> {
        let mut per = vec![Vec::new(); h.len()];
        let mut out = Vec::new();
        for i in 0..n {
            out.clear();
            h.scrape(i as i64 * 15_000, 15.0, &mut out);
            for (s, v) in out.iter().enumerate() {
                per[s].push(*v);
            }
        }
        per
    }

    #[test]
    fn counters_only_fall_at_resets() {
        let mut h = Host::new(3, 0.02);
        let names: Vec<String> = h.labels().iter().map(|l| name_of(l)).collect();
        let per = series_values(&mut h, 500);
        let counters: Vec<usize> = (0..names.len())
            .filter(|i| names[*i].ends_with("_total"))
            .collect();
        assert!(counters.len() > 50);
        // All counters of a host reset together (a restart), and only then:
        // at every scrape either none falls or nearly all that had grown do.
        let mut resets = 0;
        for step in 1..500 {
            let grown: Vec<&usize> = counters
                .iter()
                .filter(|s| per[**s][step - 1] > 0.0)
                .collect();
            let fell = grown
                .iter()
                .filter(|s| per[***s][step] < per[***s][step - 1])
                .count();
            if fell > 0 {
                resets += 1;
                assert!(
                    fell * 10 >= grown.len() * 9,
                    "{fell} of {} fell",
                    grown.len()
                );
            }
        }
        assert!(resets > 0 && resets < 30, "resets: {resets}");
        // Without resets counters never decrease and do grow.
        let mut h = Host::new(3, 0.0);
        let per = series_values(&mut h, 100);
        for s in &counters {
            assert!(per[*s].windows(2).all(|w| w[1] >= w[0]), "{}", names[*s]);
        }
        let cpu = names
            .iter()
            .position(|n| n == "node_cpu_seconds_total")
            .unwrap_or(0);
        assert!(per[cpu][99] > per[cpu][0]);
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = Host::new(11, 0.0);
        let names: Vec<String> = h.labels().iter().map(|l| name_of(l)).collect();
        let per = series_values(&mut h, 40);
        let first = names
            .iter()
            .position(|n| n == "http_request_duration_seconds_bucket")
            .unwrap_or(0);
        #[allow(clippy::needless_range_loop)] // per[series][step], read across series
        for step in 0..40 {
            let buckets: Vec<f64> = (first..first + 12).map(|s| per[s][step]).collect();
            assert!(buckets.windows(2).all(|w| w[1] >= w[0]), "{buckets:?}");
            assert_eq!(names[first + 12], "http_request_duration_seconds_sum");
            assert_eq!(names[first + 13], "http_request_duration_seconds_count");
            assert_eq!(per[first + 13][step], buckets[11], "_count = +Inf bucket");
            assert!(per[first + 12][step] > 0.0 || buckets[11] == 0.0);
        }
        // Observations spread over several buckets, not all in one.
        let last: Vec<f64> = (first..first + 12).map(|s| per[s][39]).collect();
        let distinct = last.windows(2).filter(|w| w[1] > w[0]).count();
        assert!(distinct >= 3, "{last:?}");
    }
}
