#!/usr/bin/env bash
# A local multi-process tidemark cluster on loopback: three ingesters (the
# three Raft voters), two distributors, a querier, a compactor and a
# scraper, each a real `tidemark` process with its own data directory, pid
# file and log under the work directory. See docs/cluster.md.
#
#   deploy/local/cluster.sh start          start what is not running, wait until ready
#   deploy/local/cluster.sh stop           SIGTERM everything (SIGKILL after 20 s)
#   deploy/local/cluster.sh status         pid, readiness and addresses of each
#   deploy/local/cluster.sh kill NAME      SIGKILL one process (a crashed machine)
#   deploy/local/cluster.sh restart NAME   stop (SIGTERM) and start one process
#   deploy/local/cluster.sh start NAME     start one process that is not running
#   deploy/local/cluster.sh names          the process names
#
# Environment:
#   TIDEMARK_CLUSTER_DIR   work directory (default ./data/cluster)
#   TIDEMARK_BIN           the binary (default: target/{release,debug}/tidemark
#                          under $CARGO_TARGET_DIR or ./target, else cargo build)
#   TIDEMARK_CLUSTER_PORT  first port (default 19000): process k listens for
#                          HTTP on PORT+k and for gRPC on PORT+100+k
#   TIDEMARK_CLUSTER_ARGS  extra flags for every process
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="${TIDEMARK_CLUSTER_DIR:-./data/cluster}"
base="${TIDEMARK_CLUSTER_PORT:-19000}"
tenant_note="multi-tenancy is on: send X-Scope-OrgID"

# name, roles, port offset; start order (ingesters first: they are the voters).
procs=(
    "ingester-1 ingester 1"
    "ingester-2 ingester 2"
    "ingester-3 ingester 3"
    "distributor-1 distributor 11"
    "distributor-2 distributor 12"
    "querier querier 21"
    "compactor compactor 31"
    "scraper scraper 41"
)

die() { echo "cluster.sh: $*" >&2; exit 1; }

names() { for p in "${procs[@]}"; do set -- $p; echo "$1"; done; }

# Sets role, http, grpc for a process name; fails on an unknown name.
lookup() {
    local p
    for p in "${procs[@]}"; do
        set -- $p
        if [ "$1" = "$NAME" ]; then
            role="$2"
            http="127.0.0.1:$((base + $3))"
            grpc="127.0.0.1:$((base + 100 + $3))"
            return 0
        fi
    done
    die "unknown process \"$NAME\"; one of: $(names | tr '\n' ' ')"
}

voters() {
    local v="" i
    for i in 1 2 3; do v="${v:+$v,}127.0.0.1:$((base + 100 + i))"; done
    echo "$v"
}

find_bin() {
    if [ -n "${TIDEMARK_BIN:-}" ]; then
        [ -x "$TIDEMARK_BIN" ] || die "TIDEMARK_BIN=$TIDEMARK_BIN is not an executable"
        echo "$TIDEMARK_BIN"
        return
    fi
    local target="${CARGO_TARGET_DIR:-$repo/target}" profile
    for profile in release debug; do
        if [ -x "$target/$profile/tidemark" ]; then
            echo "$target/$profile/tidemark"
            return
        fi
    done
    echo "building tidemark (cargo build --release --bin tidemark)" >&2
    (cd "$repo" && cargo build --release --bin tidemark >&2)
    echo "$target/release/tidemark"
}

# The pid of NAME if it is running (and is a tidemark, not a reused pid).
running_pid() {
    local f="$work/$NAME/pid" pid
    [ -f "$f" ] || return 1
    pid="$(cat "$f")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q tidemark || return 1
    echo "$pid"
}

ready() { curl -fsS -o /dev/null --max-time 2 "http://$http/ready" 2>/dev/null; }

start_one() {
    lookup
    if pid="$(running_pid)"; then
        echo "$NAME already running (pid $pid)"
        return
    fi
    local dir="$work/$NAME"
    mkdir -p "$dir/data"
    local args=(
        "-target=$role"
        "--server.http-listen-address=$http"
        "--server.grpc-listen-address=$grpc"
        "--storage.data-dir=$dir/data"
        "--membership.instance-id=$NAME"
        "--membership.voters=$(voters)"
    )
    if [ "$role" = scraper ] && "$bin" --help 2>/dev/null | grep -q -- --scraper.config-file; then
        # The scraper scrapes the cluster itself and sends to the
        # distributors, as tenant "self".
        cat >"$dir/prometheus.yml" <<EOF
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: tidemark
    static_configs:
      - targets: [$(for n in $(names); do NAME=$n lookup; printf "'%s'," "$http"; done | sed 's/,$//')]
EOF
        args+=("--scraper.config-file=$dir/prometheus.yml" "--scraper.default-tenant=self")
    fi
    # shellcheck disable=SC2206 # extra flags are split on purpose
    args+=(${TIDEMARK_CLUSTER_ARGS:-})
    echo "=== $(date -u +%FT%TZ) starting: $bin ${args[*]}" >>"$dir/log"
    setsid "$bin" "${args[@]}" </dev/null >>"$dir/log" 2>&1 &
    local pid=$!
    echo "$pid" >"$dir/pid"
    # `running_pid` knows the process by its command line, which stays this
    # script's until the background shell has exec'd the binary: wait for
    # that (or for the process to be gone), so a check right after a start
    # does not take a process still starting for one that exited.
    for _ in $(seq 250); do
        if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q tidemark \
            || ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
        sleep 0.02
    done
    echo "started $NAME (pid $pid)"
}

wait_ready() {
    local deadline=$((SECONDS + ${1:-60})) all=0
    while [ $SECONDS -lt $deadline ]; do
        all=1
        for NAME in "${@:2}"; do
            lookup
            if ! running_pid >/dev/null; then
                echo "$NAME exited; last lines of $work/$NAME/log:" >&2
                tail -n 20 "$work/$NAME/log" >&2
                return 1
            fi
            ready || all=0
        done
        [ $all = 1 ] && return 0
        sleep 0.5
    done
    echo "not ready after ${1:-60}s:" >&2
    for NAME in "${@:2}"; do lookup; ready || echo "  $NAME ($work/$NAME/log)" >&2; done
    return 1
}

stop_one() {
    lookup
    local pid
    pid="$(running_pid)" || { echo "$NAME not running"; return 0; }
    kill -TERM "$pid"
    local deadline=$((SECONDS + 20))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "$NAME did not stop in 20 s; SIGKILL"
        kill -KILL "$pid"
    fi
    rm -f "$work/$NAME/pid"
    echo "stopped $NAME"
}

status() {
    printf '%-14s %-12s %-8s %-8s %-22s %s\n' NAME ROLE PID STATE HTTP GRPC
    for NAME in $(names); do
        lookup
        local pid state
        if pid="$(running_pid)"; then
            if ready; then state=ready; else state=starting; fi
        else
            pid=- state=down
        fi
        printf '%-14s %-12s %-8s %-8s %-22s %s\n' "$NAME" "$role" "$pid" "$state" "http://$http" "$grpc"
    done
    NAME=distributor-1 lookup
    echo
    echo "remote_write: http://$http/api/v1/push   ($tenant_note)"
    NAME=querier lookup
    echo "Prometheus API (Grafana data source): http://$http/prometheus"
    echo "ring: http://$http/ring   logs: $work/<name>/log"
}

cmd="${1:-}"
NAME="${2:-}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
case "$cmd" in
start)
    bin="$(find_bin)"
    if [ -n "$NAME" ]; then
        start_one
        wait_ready 60 "$NAME"
    else
        for NAME in $(names); do start_one; done
        wait_ready 90 $(names)
    fi
    status
    ;;
stop)
    if [ -n "$NAME" ]; then
        stop_one
    else
        # Reverse start order: writers stop before the ingesters flush.
        for NAME in $(names | tac); do stop_one; done
    fi
    ;;
status) status ;;
kill)
    [ -n "$NAME" ] || die "usage: cluster.sh kill NAME"
    lookup
    pid="$(running_pid)" || die "$NAME is not running"
    kill -KILL "$pid"
    rm -f "$work/$NAME/pid"
    echo "killed $NAME (pid $pid) with SIGKILL"
    ;;
restart)
    [ -n "$NAME" ] || die "usage: cluster.sh restart NAME"
    bin="$(find_bin)"
    stop_one
    start_one
    wait_ready 60 "$NAME"
    status
    ;;
names) names ;;
*)
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
    [ -z "$cmd" ] || exit 2
    ;;
esac
