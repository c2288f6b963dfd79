#!/usr/bin/env bash
# Side-by-side benchmark: the same tidemark-bench workload (node_exporter-
# like hosts remote-written as history, then dashboard range queries)
# against, one after another on this machine:
#   tidemark      the embedded `all` target (release build)
#   cluster       the local 3-ingester cluster (deploy/local/cluster.sh), if present
#   victoria      Debian's victoria-metrics, single node
#   prometheus    Debian's prometheus with the remote-write receiver
# and prints the table (docs/benchmarks.md, "Side by side").
#
#   scripts/bench.sh            ~10 minutes: 5000 series, 24 h of history at 60 s
#   scripts/bench.sh --quick    ~2 minutes: 1000 series, 24 h at 120 s, 3 query runs
#
# Knobs (after --quick to override it): --series N --hours H --interval S
#   --churn PCT (per hour) --connections N --reps N --samples-per-series K
#   --targets tidemark,cluster,victoria,prometheus --out DIR
#   --no-build --bin-dir DIR (prebuilt tidemark and tidemark-bench; default
#   $CARGO_TARGET_DIR/release)
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

series=5000 hours=24 interval=60 churn=2 connections=4 reps=10 k=1
targets="tidemark,cluster,victoria,prometheus"
out="" build=1 bin_dir=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) series=1000 hours=24 interval=120 reps=3 ;;
    --series) series="$2"; shift ;;
    --hours) hours="$2"; shift ;;
    --interval) interval="$2"; shift ;;
    --churn) churn="$2"; shift ;;
    --connections) connections="$2"; shift ;;
    --reps) reps="$2"; shift ;;
    --samples-per-series) k="$2"; shift ;;
    --targets) targets="$2"; shift ;;
    --out) out="$2"; shift ;;
    --no-build) build=0 ;;
    --bin-dir) bin_dir="$2"; build=0; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

target_dir="${CARGO_TARGET_DIR:-$repo/target}"
if [ $build = 1 ]; then
    source scripts/deps.sh
    # Two invocations so that the bench's dependency features do not
    # change the tidemark binary's build.
    cargo build --release -p tidemark --bin tidemark
    cargo build --release -p tidemark-bench --bin tidemark-bench
fi
bin_dir="${bin_dir:-$target_dir/release}"
tidemark="$bin_dir/tidemark"
bench="$bin_dir/tidemark-bench"
# The peers alone need only tidemark-bench (--targets victoria,prometheus).
need=("$bench")
case ",$targets," in *,tidemark,* | *,cluster,*) need+=("$tidemark") ;; esac
for b in "${need[@]}"; do
    [ -x "$b" ] || { echo "bench.sh: $b missing (run without --no-build)" >&2; exit 1; }
done

work="$(mktemp -d /tmp/tidemark-bench.XXXXXX)"
out="${out:-$work/results}"
mkdir -p "$out"
pids=()
cluster_dir=""
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ -n "$cluster_dir" ]; then
        TIDEMARK_CLUSTER_DIR="$cluster_dir" deploy/local/cluster.sh stop >/dev/null 2>&1 || true
    fi
    rm -rf "$work/data"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

workload=(--series "$series" --hours "$hours" --interval "$interval" --churn "$churn"
    --connections "$connections" --samples-per-series "$k" --reps "$reps")
echo "workload: ${workload[*]}"
echo "results:  $out"
results=()

# Runs the measurement against a started target; $1 = name, rest = run flags.
measure() {
    local name="$1"
    shift
    if "$bench" run --name "$name" --out "$out/$name.json" "${workload[@]}" "$@"; then
        results+=("$out/$name.json")
    else
        echo "bench.sh: $name failed; left out of the table" >&2
    fi
}

# Stops the last started process and waits for it.
stop_last() {
    local p="${pids[-1]}"
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    unset 'pids[-1]'
}

run_tidemark() {
    local dir="$work/data/tidemark" http grpc
    http="$(free_port)" grpc="$(free_port)"
    mkdir -p "$dir"
    "$tidemark" -target=all --storage.data-dir="$dir" \
        --server.http-listen-address="127.0.0.1:$http" --server.grpc-listen-address="127.0.0.1:$grpc" \
        --distributor.limits.ingestion-rate=0 --distributor.limits.max-series=0 \
        --server.log-level=warn >"$work/tidemark.log" 2>&1 &
    pids+=($!)
    # After the writes, POST /ingester/flush cuts the whole head into 2 h
    # blocks; the figure after flush is those blocks (tenant "anonymous"),
    # not the bucket copy the compactor also receives under the data dir.
    measure tidemark --pid "${pids[-1]}" --write-url "http://127.0.0.1:$http/api/v1/push" \
        --query-url "http://127.0.0.1:$http" --data-dir "$dir" \
        --flush-url "http://127.0.0.1:$http/ingester/flush" \
        --flushed-path "$dir/ingester/anonymous/blocks" \
        --disk-what "data dir (WAL + head + blocks cut during the writes); after flush: the ingester's blocks"
    stop_last
}

run_cluster() {
    if [ ! -x deploy/local/cluster.sh ]; then
        echo "cluster: skipped (deploy/local/cluster.sh does not exist)"
        return
    fi
    cluster_dir="$work/data/cluster"
    local port=$((20000 + RANDOM % 20000))
    export TIDEMARK_CLUSTER_DIR="$cluster_dir" TIDEMARK_BIN="$tidemark" TIDEMARK_CLUSTER_PORT="$port"
    export TIDEMARK_CLUSTER_ARGS="--distributor.limits.ingestion-rate=0 --distributor.limits.max-series=0 --server.log-level=warn"
    if ! deploy/local/cluster.sh start >"$work/cluster.log" 2>&1; then
        echo "cluster: skipped (deploy/local/cluster.sh start failed; see $work/cluster.log)"
        tail -n 5 "$work/cluster.log" | sed 's/^/  /'
        deploy/local/cluster.sh stop >/dev/null 2>&1 || true
        cluster_dir=""
        return
    fi
    local cpids=() dirs=() flush=() f i
    for f in "$cluster_dir"/*/pid; do cpids+=(--pid "$(cat "$f")"); done
    for i in 1 2 3; do
        dirs+=(--data-dir "$cluster_dir/ingester-$i/data")
        flush+=(--flush-url "http://127.0.0.1:$((port + i))/ingester/flush"
            --flushed-path "$cluster_dir/ingester-$i/data/ingester/bench/blocks")
    done
    measure tidemark-cluster "${cpids[@]}" "${dirs[@]}" "${flush[@]}" --tenant bench \
        --write-url "http://127.0.0.1:$((port + 11))/api/v1/push" \
        --write-url "http://127.0.0.1:$((port + 12))/api/v1/push" \
        --query-url "http://127.0.0.1:$((port + 21))" \
        --disk-what "3 ingesters' data dirs (replication factor 3: three copies); after flush: their blocks"
    deploy/local/cluster.sh stop >/dev/null 2>&1 || true
    cluster_dir=""
}

run_victoria() {
    if ! command -v victoria-metrics >/dev/null; then
        echo "victoria: skipped (victoria-metrics not installed: apt-get install victoria-metrics)"
        return
    fi
    local dir="$work/data/victoria" http
    http="$(free_port)"
    # No response cache: every repetition of a query is evaluated.
    victoria-metrics -storageDataPath="$dir" -httpListenAddr="127.0.0.1:$http" \
        -retentionPeriod=1y -search.disableCache -loggerLevel=WARN >"$work/victoria.log" 2>&1 &
    pids+=($!)
    measure victoria-metrics --pid "${pids[-1]}" --write-url "http://127.0.0.1:$http/api/v1/write" \
        --query-url "http://127.0.0.1:$http" --data-dir "$dir" \
        --flush-url "http://127.0.0.1:$http/internal/force_flush" \
        --disk-what "storage dir (after /internal/force_flush)"
    stop_last
}

run_prometheus() {
    if ! command -v prometheus >/dev/null; then
        echo "prometheus: skipped (prometheus not installed: apt-get install prometheus)"
        return
    fi
    local dir="$work/data/prometheus" http
    http="$(free_port)"
    mkdir -p "$dir"
    # The history is sent in time order (all hosts within 10 minutes of
    # each other), inside the head's 1 h append window: no out-of-order
    # window needed, so Prometheus runs its default ingestion path.
    printf 'global:\n  scrape_interval: %ss\nscrape_configs: []\n' "$interval" >"$work/prometheus.yml"
    prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
        --web.listen-address="127.0.0.1:$http" --web.enable-remote-write-receiver \
        --web.enable-admin-api --storage.tsdb.retention.time=1y --log.level=warn \
        >"$work/prometheus.log" 2>&1 &
    pids+=($!)
    measure prometheus --pid "${pids[-1]}" --write-url "http://127.0.0.1:$http/api/v1/write" \
        --query-url "http://127.0.0.1:$http" --data-dir "$dir/tsdb" \
        --flush-url "http://127.0.0.1:$http/api/v1/admin/tsdb/snapshot" \
        --flushed-path "$dir/tsdb/snapshots" \
        --disk-what "data dir (WAL + blocks); after flush: a TSDB snapshot (head written as blocks)"
    stop_last
}

IFS=, read -ra want <<<"$targets"
for t in "${want[@]}"; do
    case "$t" in
    tidemark) run_tidemark ;;
    cluster) run_cluster ;;
    victoria) run_victoria ;;
    prometheus) run_prometheus ;;
    *) echo "bench.sh: unknown target $t" >&2; exit 2 ;;
    esac
done

[ ${#results[@]} -gt 0 ] || { echo "bench.sh: no target was measured" >&2; exit 1; }
echo
"$bench" table "${results[@]}" | tee "$out/table.md"
echo "(raw results and logs: $out, $work)"
