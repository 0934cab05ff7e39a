#!/usr/bin/env bash
# Runs the full test suite: formatting, lints, every unit and integration test against the real
# PostgreSQL and RabbitMQ (started here if they are not running), then the broker- and
# database-restart tests, which restart RabbitMQ and PostgreSQL and so run alone, schemathesis
# over each service's OpenAPI document (the platform started as up.sh starts it), and a smoke
# run of the benchmark harness.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
ensure_postgres
ensure_rabbitmq
command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked

export TEST_PG_ADMIN_URL="${TEST_PG_ADMIN_URL:-$PG_ADMIN_URL}"
profile=default
[ -n "${CI:-}" ] && profile=ci

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
say "build (the end-to-end tests start the service binaries)"
cargo build --workspace --bins
if command -v kubectl >/dev/null; then
  command -v kubernetes-validate >/dev/null \
    || pip install -q kubernetes-validate 2>/dev/null \
    || pip install -q --break-system-packages kubernetes-validate 2>/dev/null || true
fi
if command -v kubectl >/dev/null && command -v kubernetes-validate >/dev/null; then
  say "kubernetes manifests (offline schema validation)"
  kubectl kustomize deploy/k8s/overlays/dev | kubernetes-validate -k 1.33.0 --strict - >/dev/null
else
  say "kubernetes manifests: skipped (kubectl or kubernetes-validate is not installable here)"
fi
say "tests"
cargo nextest run --workspace --profile "$profile"
say "broker and database restart tests (each runs alone)"
cargo nextest run --workspace --profile "$profile" --run-ignored only --test-threads 1 \
  -E 'test(broker_restart) | test(database_restart)'
say "OpenAPI documents against the running services (schemathesis, deploy/local/api-fuzz.sh)"
"$ROOT/deploy/local/up.sh" >"${TMPDIR:-/tmp}/cp-up.log" 2>&1 || { cat "${TMPDIR:-/tmp}/cp-up.log"; exit 1; }
trap '"$ROOT/deploy/local/down.sh" --quiet' EXIT
"$ROOT/deploy/local/api-fuzz.sh"
"$ROOT/deploy/local/down.sh" --quiet
trap - EXIT
say "benchmark harness smoke run (a few seconds; figures from a debug build mean nothing)"
"${CARGO_TARGET_DIR:-$ROOT/target}/debug/bench" smoke --out "${CARGO_TARGET_DIR:-$ROOT/target}/bench"
