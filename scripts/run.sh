#!/usr/bin/env bash
# Builds tidemark and runs the embedded default: every role in one process,
# data under ./data, HTTP on :9009, gRPC on :9095. Extra arguments go to
# the binary, e.g. scripts/run.sh --config.file tidemark.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
exec cargo run --release --bin tidemark -- "$@"
