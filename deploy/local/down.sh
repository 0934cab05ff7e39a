#!/usr/bin/env bash
# Stops the locally started services (SIGTERM, so they drain), leaving databases and broker up.
set -euo pipefail
source "$(dirname "$0")/common.sh"
quiet="${1:-}"
for f in "$PIDS"/*.pid; do
  [ -e "$f" ] || continue
  pid="$(cat "$f")"
  name="$(basename "$f" .pid)"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    [ -n "$quiet" ] || echo "stopped $name"
  fi
  rm -f "$f"
done
