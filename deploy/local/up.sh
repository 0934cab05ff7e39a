#!/usr/bin/env bash
# Starts the whole platform locally: prepares PostgreSQL (a database and two roles per
# service) and the RabbitMQ vhost, builds the services, migrates, starts all five in the
# background (logs in .local/logs), waits until each is ready, and prints URLs and a dev token.
#   PROFILE=release deploy/local/up.sh   for optimized binaries
set -euo pipefail
source "$(dirname "$0")/common.sh"
PROFILE="${PROFILE:-dev}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN_DIR="$TARGET_DIR/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")"

command -v cargo >/dev/null || die "cargo is not installed (https://rustup.rs)"
ensure_postgres
ensure_rabbitmq

say "preparing databases and roles"
for s in "${SERVICES[@]}"; do
  read -r name prefix port db <<<"$s"
  psql "$PG_ADMIN_URL" -v ON_ERROR_STOP=1 -qAt >/dev/null <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${db}_owner') THEN
    CREATE ROLE ${db}_owner LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${db}_app') THEN
    CREATE ROLE ${db}_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
END \$\$;
ALTER ROLE ${db}_owner PASSWORD '$DEV_DB_PASSWORD';
ALTER ROLE ${db}_app PASSWORD '$DEV_DB_PASSWORD';
SELECT 'CREATE DATABASE $db OWNER ${db}_owner'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$db')\gexec
REVOKE CONNECT ON DATABASE $db FROM PUBLIC;
GRANT CONNECT ON DATABASE $db TO ${db}_owner, ${db}_app;
SQL
done

say "preparing the RabbitMQ vhost $AMQP_VHOST"
rabbitmqctl -q list_vhosts | grep -qx "$AMQP_VHOST" || rabbitmqctl -q add_vhost "$AMQP_VHOST"
rabbitmqctl -q set_permissions -p "$AMQP_VHOST" guest ".*" ".*" ".*"

say "building ($PROFILE)"
(cd "$ROOT" && cargo build --workspace --bins --profile "$PROFILE")

mkdir -p "$LOGS" "$PIDS"
"$ROOT/deploy/local/down.sh" --quiet || true

for s in "${SERVICES[@]}"; do
  read -r name prefix port db <<<"$s"
  (
    service_env "$prefix" "$db" "$port"
    "$BIN_DIR/$name" migrate >>"$LOGS/$name.log" 2>&1 || die "$name: migrate failed (see $LOGS/$name.log)"
    nohup "$BIN_DIR/$name" serve >>"$LOGS/$name.log" 2>&1 &
    echo $! >"$PIDS/$name.pid"
  )
done

say "waiting for readiness"
for s in "${SERVICES[@]}"; do
  read -r name prefix port db <<<"$s"
  ok=
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1; then ok=1; break; fi
    kill -0 "$(cat "$PIDS/$name.pid")" 2>/dev/null || break
    sleep 0.2
  done
  [ -n "$ok" ] || die "$name did not become ready (see $LOGS/$name.log)"
done

TOKEN="$(service_env CUSTOMER_API customer_api 8081; "$BIN_DIR/customer-api" dev-token --sub local-admin 2>/dev/null)"
echo "$TOKEN" >"$STATE/dev-token"

echo
echo "The platform is running (logs in $LOGS, stop with deploy/local/down.sh):"
for s in "${SERVICES[@]}"; do
  read -r name prefix port db <<<"$s"
  printf '  %-15s http://127.0.0.1:%s   (docs: /docs, OpenAPI: /openapi.json)\n' "$name" "$port"
done
echo
echo "A platform-admin dev token (24 h, also in .local/dev-token):"
echo "$TOKEN"
