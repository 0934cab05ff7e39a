# Shared by the local scripts: service list, connection settings, and the checks that make a
# fresh Debian machine ready (PostgreSQL and RabbitMQ installed, running, reachable).
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="$ROOT/.local"
LOGS="$STATE/logs"
PIDS="$STATE/pids"

# name  crate-dir  env-prefix  port  database
SERVICES=(
  "customer-api   CUSTOMER_API   8081 customer_api"
  "partition-keys PARTITION_KEYS 8082 partition_keys"
  "org-structure  ORG_STRUCTURE  8083 org_structure"
  "gdpr-worker    GDPR_WORKER    8084 gdpr_worker"
  "search-sync    SEARCH_SYNC    8085 search_sync"
)

PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PG_HOST="${PG_HOST:-127.0.0.1}"
PG_PORT="${PG_PORT:-5432}"
# Local-only passwords for the per-service roles (trust auth ignores them; md5/scram uses them).
DEV_DB_PASSWORD="${DEV_DB_PASSWORD:-local-dev}"
AMQP_VHOST="${AMQP_VHOST:-customer-platform}"
AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/$AMQP_VHOST}"
DEV_SECRET="${DEV_SECRET:-local-dev-secret-not-for-production-0123456789}"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

apt_install() {
  command -v apt-get >/dev/null || return 1
  say "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 ||
    { as_root apt-get update -qq >/dev/null 2>&1 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
}

pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; }

ensure_postgres() {
  if ! command -v psql >/dev/null || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    apt_install postgresql postgresql-contrib ||
      die "PostgreSQL (15 or newer, with contrib) is not installed and could not be installed: apt-get install postgresql postgresql-contrib"
  fi
  if ! pg_ready; then
    say "starting PostgreSQL"
    local v
    v="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)"
    [ -n "$v" ] || die "no PostgreSQL cluster found under /etc/postgresql"
    as_root pg_ctlcluster --skip-systemctl-redirect "$v" main start >/dev/null 2>&1 ||
      as_root pg_ctlcluster "$v" main start >/dev/null 2>&1 || true
    for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
    pg_ready || die "PostgreSQL does not answer on $PG_HOST:$PG_PORT"
  fi
  psql "$PG_ADMIN_URL" -qAtc "select 1" >/dev/null 2>&1 ||
    die "cannot connect as the PostgreSQL admin ($PG_ADMIN_URL); set PG_ADMIN_URL to a superuser URL"
}

rabbit_ready() { rabbitmqctl -q status >/dev/null 2>&1; }

ensure_rabbitmq() {
  if ! command -v rabbitmqctl >/dev/null; then
    apt_install rabbitmq-server ||
      die "RabbitMQ (3.10 or newer) is not installed and could not be installed: apt-get install rabbitmq-server"
  fi
  if ! rabbit_ready; then
    say "starting RabbitMQ"
    as_root rabbitmq-server -detached >/dev/null 2>&1 || true
    for _ in $(seq 1 60); do rabbit_ready && break; sleep 1; done
    rabbit_ready || die "RabbitMQ did not start (see /var/log/rabbitmq)"
  fi
  rabbitmqctl -q await_startup >/dev/null 2>&1 || true
}

service_env() {
  # service_env PREFIX DB PORT -> exports the service's configuration
  local prefix="$1" db="$2" port="$3"
  export "${prefix}__HTTP__BIND=127.0.0.1:$port"
  export "${prefix}__DATABASE__URL=postgres://${db}_app:$DEV_DB_PASSWORD@$PG_HOST:$PG_PORT/$db"
  export "${prefix}__DATABASE__MIGRATE_URL=postgres://${db}_owner:$DEV_DB_PASSWORD@$PG_HOST:$PG_PORT/$db"
  export "${prefix}__AMQP__URL=$AMQP_URL"
  export "${prefix}__AUTH__HS256_SECRET=$DEV_SECRET"
  export "${prefix}__LOG__FORMAT=${LOG_FORMAT:-pretty}"
}
