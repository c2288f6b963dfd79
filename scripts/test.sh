#!/usr/bin/env bash
# The test command: builds the binary the process tests start, then runs
# every test of the workspace, the PromQL conformance suite included (it
# reads ../shared/conformance and says so when that is absent).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
cargo build --bin tidemark
cargo test --workspace --no-fail-fast
