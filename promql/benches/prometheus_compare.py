#!/usr/bin/env python3
"""Times the range queries of benches/engine.rs on a real Prometheus.

Generates the same data as the criterion benchmark (1,000 series each of
counters `a` and `b`, 100 classic histograms `h_bucket` with 11 buckets,
one sample every 10s from 0 to 1h + 999 x 10s), backfills it with
`promtool tsdb create-blocks-from openmetrics`, starts `prometheus` on that
TSDB and times each query (1,000 steps, 10s step) through the HTTP API,
reporting the median of N runs after one warm-up run: the engine's own
`execTotalTime` (from `stats=all`, without JSON encoding; comparable to
the criterion figure, but wall time), the CPU time the prometheus process
used for the request (all threads, including JSON encoding of the result;
from /proc/<pid>/stat, 10 ms resolution), and the wall time of the request.

Usage: prometheus_compare.py [workdir] [runs]
Requires /usr/bin/prometheus and /usr/bin/promtool.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request

INTERVAL_S = 10
STEPS = 1000
START_S = 3600
END_S = START_S + (STEPS - 1) * INTERVAL_S
SERIES = 1000
BOUNDS = ["0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
PORT = 19099

QUERIES = [
    "a",
    "rate(a[1m])",
    "rate(a[1h])",
    "sum(a)",
    "sum by (group) (rate(a[5m]))",
    "histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))",
    "histogram_quantile(0.9, rate(h_bucket[5m]))",
    "topk(5, a)",
    "a + b",
    "a - on(l) b",
    "a / on(l) group_left(group) b",
    "max_over_time(rate(a[1m])[10m:1m])",
]


def fmt(v):
    return repr(float(v)) if v != int(v) else str(int(v))


def generate(path):
    n = END_S // INTERVAL_S + 1
    with open(path, "w") as f:
        for i in range(n):
            t = i * INTERVAL_S
            lines = []
            for name in ("a", "b"):
                for s in range(SERIES):
                    inc = 1 + s % 7
                    lines.append(f'{name}{{l="{s}",group="{s % 10}"}} {fmt(i * inc)} {t}\n')
            for s in range(100):
                for b, le in enumerate(BOUNDS):
                    lines.append(f'h_bucket{{l="{s}",le="{le}"}} {fmt(i * (b + 1 + s % 3))} {t}\n')
            f.writelines(lines)
        f.write("# EOF\n")


def proc_cpu_ms(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks * 1000.0 / os.sysconf("SC_CLK_TCK")


def get(url):
    with urllib.request.urlopen(url, timeout=300) as r:
        return json.loads(r.read())


def main():
    work = sys.argv[1] if len(sys.argv) > 1 else "/tmp/tidemark-prom-bench"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    os.makedirs(work, exist_ok=True)
    data = os.path.join(work, "data.om")
    tsdb = os.path.join(work, "tsdb")
    if not os.path.exists(tsdb):
        generate(data)
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", data, tsdb],
                       check=True, stdout=subprocess.DEVNULL)
        os.remove(data)
    cfg = os.path.join(work, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1h\n")
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={tsdb}",
         "--storage.tsdb.retention.time=100y", f"--web.listen-address=127.0.0.1:{PORT}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{PORT}"
        for _ in range(120):
            try:
                urllib.request.urlopen(base + "/-/ready", timeout=2)
                break
            except Exception:
                time.sleep(1)
        print(f"{'query':<60} {'exec ms':>9} {'cpu ms':>9} {'http ms':>9} {'series':>7}")
        for q in QUERIES:
            qs = urllib.parse.urlencode({"query": q, "start": START_S, "end": END_S,
                                         "step": INTERVAL_S, "stats": "all"})
            url = f"{base}/api/v1/query_range?{qs}"
            res = get(url)  # warm-up
            n = len(res.get("data", {}).get("result", []))
            wall, exec_ms, cpu_ms = [], [], []
            for _ in range(runs):
                c0 = proc_cpu_ms(proc.pid)
                t0 = time.perf_counter()
                r = get(url)
                wall.append((time.perf_counter() - t0) * 1000)
                cpu_ms.append(proc_cpu_ms(proc.pid) - c0)
                exec_ms.append(r["data"]["stats"]["timings"]["execTotalTime"] * 1000)
            print(f"{q:<60} {statistics.median(exec_ms):>9.1f} {statistics.median(cpu_ms):>9.1f} "
                  f"{statistics.median(wall):>9.1f} {n:>7}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
