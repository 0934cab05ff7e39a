#!/usr/bin/env bash
# Builds the release binaries and runs the benchmark harness:
#   deploy/local/bench.sh all                 # every scenario, default settings
#   deploy/local/bench.sh get-customer -- --duration 60 --concurrency 64
# Results: a table on stdout and target/bench/result-<time>.json.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
ensure_postgres
ensure_rabbitmq
command -v pgbench >/dev/null || apt_install postgresql-client || die "pgbench is missing (apt-get install postgresql-client)"
scenarios=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do scenarios+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#scenarios[@]} -gt 0 ] || scenarios=(all)
cargo build --release --workspace --bins
export TEST_PG_ADMIN_URL="${TEST_PG_ADMIN_URL:-$PG_ADMIN_URL}"
"${CARGO_TARGET_DIR:-$ROOT/target}/release/bench" "${scenarios[@]}" "$@"
