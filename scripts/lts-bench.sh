#!/usr/bin/env bash
# Long-term storage figures of docs/benchmarks.md: 7 days of node_exporter-like
# data (scripts/lts-bench-data.py) as Prometheus blocks (promtool), the same
# blocks compacted by Prometheus and, imported with `tidemark tools
# import-blocks`, by tidemark's compactor; bytes per sample of each, then
# query_range latency over the 7 days at a 1 h step against both.
#
# usage: scripts/lts-bench.sh TIDEMARK_BIN [WORK_DIR] [HOSTS] [RUNS]
set -euo pipefail

BIN=${1:?tidemark binary}
WORK=${2:-/tmp/lts}
HOSTS=${3:-8}
RUNS=${4:-7}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$WORK"
cd "$WORK"

# 7 whole days ending today 00:00 UTC, kept with the data for re-runs.
[ -s end_ms ] || echo $(( $(date +%s) / 86400 * 86400 * 1000 )) > end_ms
END=$(cat end_ms)
START=$(( END - 7 * 86400 * 1000 ))
if [ ! -s node7d.om ]; then
  python3 "$HERE/lts-bench-data.py" --hosts "$HOSTS" --days 7 --interval 60 --end-ms "$END" > node7d.om
fi
if [ ! -d prom-blocks ]; then
  promtool tsdb create-blocks-from openmetrics --quiet node7d.om prom-blocks
fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

samples() { # total samples of the blocks (meta.json) under $1
  python3 - "$1" <<'EOF'
import json, pathlib, sys
root = pathlib.Path(sys.argv[1])
marked = {p.parent for p in root.rglob("deletion-mark.json")}
print(sum(json.loads(m.read_text())["stats"]["numSamples"]
          for m in root.rglob("meta.json") if m.parent not in marked))
EOF
}
bytes() { # bytes of the unmarked blocks under $1
  python3 - "$1" <<'EOF'
import pathlib, sys
root = pathlib.Path(sys.argv[1])
blocks = [m.parent for m in root.rglob("meta.json") if not (m.parent / "deletion-mark.json").exists()]
print(sum(f.stat().st_size for b in blocks for f in b.rglob("*") if f.is_file()))
EOF
}
report() { # name dir
  local s b; s=$(samples "$2"); b=$(bytes "$2")
  echo "$1: $(find "$2" -name meta.json | wc -l) blocks, $b bytes, $s samples, $(python3 -c "print(round($b/$s, 3))") bytes/sample"
}

report "promtool 2h blocks" prom-blocks

# Prometheus compacts the imported 2 h blocks (2h -> 6h -> 18h -> 54h with
# 30d retention).
rm -rf prom-data && cp -r prom-blocks prom-data
printf 'global: {scrape_interval: 1h}\n' > prom.yml
prometheus --config.file=prom.yml --storage.tsdb.path=prom-data --storage.tsdb.retention.time=30d \
  --web.listen-address=127.0.0.1:19090 > prom.log 2>&1 &
pids+=($!)
# Done when the block count has not changed for 30 s after a compaction.
last=-1; same=0
for _ in $(seq 900); do
  n=$(find prom-data -maxdepth 2 -name meta.json | wc -l)
  if [ "$n" -eq "$last" ]; then same=$((same + 1)); else same=0; last=$n; fi
  grep -q "compact blocks" prom.log && [ "$same" -ge 30 ] && break
  sleep 1
done
report "Prometheus after its compaction" prom-data

# tidemark: import, compact 2h -> 12h -> 24h, inputs deleted after 1 s.
rm -rf tm-data
TM=(--storage.data-dir=tm-data --compactor.compaction-interval=5s --compactor.deletion-delay=1s
    --compactor.partial-block-delay=1m)
"$BIN" "${TM[@]}" tools import-blocks --tenant anonymous prom-blocks > import.log 2>&1
"$BIN" -target=all "${TM[@]}" --server.http-listen-address=127.0.0.1:19091 \
  --server.grpc-listen-address=127.0.0.1:19095 > tidemark.log 2>&1 &
pids+=($!)
for _ in $(seq 1800); do
  n=$(find tm-data/bucket/anonymous -name meta.json | wc -l)
  m=$(find tm-data/bucket/anonymous -name deletion-mark.json | wc -l)
  [ "$n" -eq 7 ] && [ "$m" -eq 0 ] && break
  sleep 1
done
report "tidemark bucket after compaction" tm-data/bucket/anonymous

time_query() { # url query -> p50 seconds of $RUNS runs after one warm-up
  local url=$1 q=$2 times=()
  for i in $(seq 0 "$RUNS"); do
    t=$(curl -s -o /dev/null -w '%{time_total}' --data-urlencode "query=$q" \
      --data-urlencode "start=$((START / 1000))" --data-urlencode "end=$((END / 1000))" \
      --data-urlencode "step=3600" "$url/api/v1/query_range")
    [ "$i" -gt 0 ] && times+=("$t")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

QUERIES=(
  'rate(node_network_receive_bytes_total[5m])'
  'sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))'
  'histogram_quantile(0.99, sum by (le, handler) (rate(http_request_duration_seconds_bucket[5m])))'
  'count_over_time(node_load1[1h])'
)
echo "query_range over 7 d at 1 h step, p50 of $RUNS runs (s): tidemark | prometheus"
for q in "${QUERIES[@]}"; do
  echo "$q | $(time_query http://127.0.0.1:19091 "$q") | $(time_query http://127.0.0.1:19090 "$q")"
done
