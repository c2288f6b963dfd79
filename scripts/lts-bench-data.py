#!/usr/bin/env python3
"""OpenMetrics text of node_exporter-like hosts over days, for
`promtool tsdb create-blocks-from openmetrics`: the long-term-storage
figures of docs/benchmarks.md (bytes per sample in the bucket after
compaction next to Prometheus, query latency over 7 days of blocks).

Per host (101 series): node_cpu_seconds_total for 4 CPUs x 8 modes in
1/100 s ticks, memory gauges in 4 KiB pages, filesystem avail/size for 3
mount points, network and disk byte/packet/op counters, load averages with
two decimals, a few constants, and a service histogram
http_request_duration_seconds (12 buckets, _sum, _count) for 2 handlers.
Counters reset when a host restarts (about every 3 days). Deterministic.

usage: lts-bench-data.py --hosts 8 --days 7 --interval 60 --end-ms MS > data.om
"""

import argparse
import math
import random
import sys
import zlib

MODES = [("idle", 0.70), ("iowait", 0.02), ("irq", 0.003), ("nice", 0.002),
         ("softirq", 0.01), ("steal", 0.005), ("system", 0.06), ("user", 0.15)]
BOUNDS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]


def host_series(h, rng):
    """(name, labels, kind, params) for one host."""
    inst = f"host-{h:03d}:9100"
    base = {"instance": inst, "job": "node"}
    out = []

    def add(name, kind, extra=None, **p):
        labels = dict(base)
        labels.update(extra or {})
        out.append((name, labels, kind, p))

    for cpu in range(4):
        for mode, frac in MODES:
            add("node_cpu_seconds_total", "counter", {"cpu": str(cpu), "mode": mode},
                rate=frac, round=0.01)
    for name, gib in [("MemTotal", 16), ("MemFree", 3), ("MemAvailable", 9), ("Buffers", 0.4),
                      ("Cached", 5), ("Active", 6), ("Inactive", 4), ("Dirty", 0.01),
                      ("SwapTotal", 2), ("SwapFree", 1.9)]:
        const = name in ("MemTotal", "SwapTotal")
        add(f"node_memory_{name}_bytes", "const" if const else "gauge",
            value=gib * 2**30, amp=gib * 2**30 * 0.1, noise=gib * 2**30 * 0.01, round=4096)
    for mp, dev, gib in [("/", "vda1", 50), ("/var", "vdb1", 200), ("/boot", "vda2", 1)]:
        ex = {"mountpoint": mp, "device": dev, "fstype": "ext4"}
        add("node_filesystem_size_bytes", "const", ex, value=gib * 2**30)
        add("node_filesystem_avail_bytes", "gauge", ex, value=gib * 2**30 * 0.4,
            amp=gib * 2**30 * 0.05, noise=2**20, round=4096)
    for dev, rate in [("eth0", 2e5), ("lo", 1e4)]:
        for d in ("receive", "transmit"):
            add(f"node_network_{d}_bytes_total", "counter", {"device": dev}, rate=rate, round=1)
            add(f"node_network_{d}_packets_total", "counter", {"device": dev}, rate=rate / 800, round=1)
    for dev in ("vda", "vdb"):
        add("node_disk_read_bytes_total", "counter", {"device": dev}, rate=5e4, round=512)
        add("node_disk_written_bytes_total", "counter", {"device": dev}, rate=2e5, round=512)
        add("node_disk_reads_completed_total", "counter", {"device": dev}, rate=5, round=1)
        add("node_disk_writes_completed_total", "counter", {"device": dev}, rate=20, round=1)
    for n, v in [("1", 0.6), ("5", 0.5), ("15", 0.45)]:
        add(f"node_load{n}", "gauge", value=v, amp=v * 0.5, noise=v * 0.2, round=0.01)
    add("node_uname_info", "const", {"release": "6.1.0-13-amd64", "nodename": f"host-{h:03d}"}, value=1)
    add("node_boot_time_seconds", "const", value=1.7e9 + rng.randint(0, 10**6))
    add("node_time_seconds", "clock")
    add("node_memory_HugePages_Total", "const", value=0)
    add("node_exporter_build_info", "const", {"version": "1.6.1"}, value=1)
    add("node_entropy_available_bits", "gauge", value=3500, amp=200, noise=50, round=1)
    for handler, rate in [("/api", 20), ("/health", 1)]:
        for le in BOUNDS:
            add("http_request_duration_seconds_bucket", "hist", {"handler": handler, "le": le},
                rate=rate, le=le)
        add("http_request_duration_seconds_sum", "hist", {"handler": handler}, rate=rate, le="sum")
        add("http_request_duration_seconds_count", "hist", {"handler": handler}, rate=rate, le="count")
    return out


def fraction_below(le):
    """Share of a log-normal latency (median 50 ms) under bound `le`."""
    if le == "+Inf":
        return 1.0
    x = math.log(float(le) / 0.05) / 0.9
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def quantize(v, step):
    """`v` in units of `step`, as an exporter computes it (ticks / 100)."""
    if step < 1:
        per = round(1 / step)
        return round(v * per) / per
    return float(round(v / step) * step)


def fmt(v):
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=8)
    ap.add_argument("--days", type=float, default=7)
    ap.add_argument("--interval", type=int, default=60)
    ap.add_argument("--end-ms", type=int, required=True)
    a = ap.parse_args()
    step = a.interval * 1000
    end = a.end_ms // step * step
    n = int(a.days * 86400 * 1000 // step)
    start = end - n * step
    rows = []
    for h in range(a.hosts):
        rng = random.Random(h)
        restarts = sorted(start + rng.randint(0, n) * step for _ in range(int(a.days / 3) + 1))
        for name, labels, kind, p in host_series(h, rng):
            rows.append((name, sorted(labels.items()), kind, p, h, restarts))
    rows.sort(key=lambda r: (r[0], r[1]))
    out = sys.stdout
    last = None
    samples = 0
    for name, labels, kind, p, h, restarts in rows:
        if name != last:
            out.write(f"# TYPE {name} unknown\n")
            last = name
        ls = ",".join(f'{k}="{v}"' for k, v in labels)
        rng = random.Random(zlib.crc32(f"{name}{{{ls}}}".encode()))
        value = 0.0
        phase = rng.random() * 6.28
        lines = []
        for k in range(n):
            t = start + k * step
            if kind == "counter" or kind == "hist":
                if any(r == t for r in restarts):
                    value = 0.0
                if kind == "counter":
                    value += p["rate"] * a.interval * (0.5 + rng.random())
                    v = quantize(value, p["round"])
                else:
                    obs = p["rate"] * a.interval * (0.5 + rng.random())
                    le = p["le"]
                    if le == "sum":
                        value += obs * 0.07
                        v = round(value, 3)
                    else:
                        value += obs * (1.0 if le == "count" else fraction_below(le))
                        v = float(math.floor(value))
            elif kind == "gauge":
                v = p["value"] + p["amp"] * math.sin(phase + t / 86400000 * 6.28) \
                    + p["noise"] * (rng.random() - 0.5)
                v = quantize(v, p["round"])
            elif kind == "const":
                v = p["value"]
            else:
                v = t / 1000 + rng.random() * 0.01
            lines.append(f"{name}{{{ls}}} {fmt(v)} {t // 1000}\n")
        out.write("".join(lines))
        samples += n
    out.write("# EOF\n")
    print(f"{len(rows)} series, {samples} samples, {start}..{end} ms", file=sys.stderr)


if __name__ == "__main__":
    main()
