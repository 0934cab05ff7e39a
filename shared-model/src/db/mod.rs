//! Database access: the pool, tenant-scoped transactions and migrations.
//!
//! Row-level security is the backstop for tenant isolation: every transaction a handler opens
//! says whose data it may see (`app.customer_id`) or that it acts as a platform admin
//! (`app.platform_admin`), with `set_config(..., true)` so the setting dies with the
//! transaction and never leaks to the next user of a pooled connection. This module must never
//! hand out a connection with a session-level tenant setting.

use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::config::DatabaseConfig;
use crate::ids::CustomerId;

/// Whose data a transaction may touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// One tenant's rows only.
    Tenant(CustomerId),
    /// Every tenant's rows, for a caller holding a PlatformAdmin* permission.
    PlatformAdmin,
    /// Every tenant's rows, for the service's own background work (relay, reactions).
    System,
}

impl Scope {
    /// The values of `app.customer_id` and `app.platform_admin` for this scope.
    fn settings(self) -> (String, &'static str) {
        match self {
            Scope::Tenant(id) => (id.to_string(), "off"),
            Scope::PlatformAdmin | Scope::System => (String::new(), "on"),
        }
    }
}

pub type Tx = Transaction<'static, Postgres>;

/// The current time at the database's precision (microseconds), so a value written and read
/// back compares equal.
pub fn now() -> time::OffsetDateTime {
    let t = time::OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

/// Opens the runtime pool. Fails with a message naming what to fix.
pub fn connect(cfg: &DatabaseConfig) -> anyhow::Result<PgPool> {
    let opts: PgConnectOptions = cfg
        .url
        .expose()
        .parse()
        .map_err(|e| anyhow::anyhow!("database.url is not a valid PostgreSQL URL: {e}"))?;
    Ok(PgPoolOptions::new()
        .max_connections(cfg.max_connections)
        .min_connections(cfg.min_connections)
        .acquire_timeout(Duration::from_millis(cfg.acquire_timeout_ms))
        // sqlx already checks every connection when it is released; a second check on acquire
        // would cost a round trip per request. A connection broken while idle fails its first
        // statement and is discarded.
        .test_before_acquire(false)
        .connect_lazy_with(opts.application_name("customer-platform")))
}

/// Begins a transaction scoped to `scope`, in one round trip.
///
/// A transaction that only reads may be dropped instead of committed: its rollback is then
/// sent together with the pool's release check, off the request's path.
pub async fn begin(pool: &PgPool, scope: Scope) -> Result<Tx, sqlx::Error> {
    begin_with(pool, scope, &[]).await
}

/// A setting a transaction begins with (`set_config(name, value, true)`): a constant of the
/// service's, never a caller's value.
pub type Setting = (&'static str, &'static str);

/// As [`begin`], with `settings` set for the transaction in the same round trip (a search's
/// planner settings, say). A name or value other than letters, digits, `_`, `.` and `-` is
/// refused: they are written into the statement's text.
pub async fn begin_with(
    pool: &PgPool,
    scope: Scope,
    settings: &[Setting],
) -> Result<Tx, sqlx::Error> {
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    };
    if let Some((name, _)) = settings.iter().find(|(n, v)| !plain(n) || !plain(v)) {
        return Err(sqlx::Error::Configuration(
            format!("transaction setting {name:?} is not a plain name and value").into(),
        ));
    }
    pool.begin_with(sqlx::AssertSqlSafe(begin_sql(scope, settings)))
        .await
}

/// `BEGIN` plus the scope settings (and `settings`) as one simple query. Only a UUID
/// (formatted from its typed value) and checked constants are interpolated, so nothing a
/// caller sends reaches this text.
fn begin_sql(scope: Scope, settings: &[Setting]) -> String {
    let (customer, admin) = scope.settings();
    let mut sql = format!(
        "BEGIN; SELECT set_config('app.customer_id', '{customer}', true), \
         set_config('app.platform_admin', '{admin}', true)"
    );
    for (name, value) in settings {
        sql.push_str(&format!(", set_config('{name}', '{value}', true)"));
    }
    sql
}

/// Changes the row-level security context inside an open transaction (e.g. a reaction that
/// must reach another tenant's rows switches to `Scope::System` explicitly).
pub async fn set_scope(conn: &mut PgConnection, scope: Scope) -> Result<(), sqlx::Error> {
    let (customer, admin) = scope.settings();
    sqlx::query(
        "SELECT set_config('app.customer_id', $1, true), set_config('app.platform_admin', $2, true)",
    )
    .bind(customer)
    .bind(admin)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets the row-level security context for the rest of a connection's life, for a connection
/// detached from the pool that one task owns (e.g. the outbox relay leader's): pooled
/// connections must use `begin`, whose settings end with the transaction.
pub async fn set_session_scope(conn: &mut PgConnection, scope: Scope) -> Result<(), sqlx::Error> {
    let (customer, admin) = scope.settings();
    sqlx::query(
        "SELECT set_config('app.customer_id', $1, false), set_config('app.platform_admin', $2, false)",
    )
    .bind(customer)
    .bind(admin)
    .execute(conn)
    .await?;
    Ok(())
}

/// The kit's own tables (outbox, inbox, idempotency keys, snapshot runs) and the RLS helper functions.
/// Versions 1..=99 are the kit's; a service numbers its migrations from 1000.
const KIT_MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "kit", include_str!("../../migrations/0001_kit.sql")),
    (
        2,
        "idempotency records",
        include_str!("../../migrations/0002_idempotency_records.sql"),
    ),
    (
        3,
        "snapshot runs",
        include_str!("../../migrations/0003_snapshots.sql"),
    ),
];

/// The service's migrations merged with the kit's.
pub fn migrator(service: &Migrator) -> Migrator {
    let mut all: Vec<Migration> = KIT_MIGRATIONS
        .iter()
        .map(|(v, d, sql)| {
            Migration::new(
                *v,
                (*d).into(),
                MigrationType::Simple,
                sqlx::SqlStr::from_static(sql),
                false,
            )
        })
        .collect();
    all.extend(service.iter().cloned());
    Migrator::with_migrations(all)
}

/// Runs every migration as the schema owner, then grants the runtime role (the user of
/// `database.url`) data access: it can read and write rows, never change the schema or bypass
/// row-level security.
pub async fn migrate(cfg: &DatabaseConfig, service: &Migrator) -> anyhow::Result<()> {
    let owner_url = cfg
        .migrate_url
        .as_ref()
        .unwrap_or(&cfg.url)
        .expose()
        .clone();
    let opts: PgConnectOptions = owner_url
        .parse()
        .map_err(|e| anyhow::anyhow!("database.migrate_url is not a valid PostgreSQL URL: {e}"))?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(opts)
        .await
        .map_err(|e| anyhow::anyhow!("connecting to the database for migrations: {e}"))?;
    migrator(service).run(&pool).await?;
    let runtime = runtime_role(cfg.url.expose())?;
    let owner: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&pool)
        .await?;
    if runtime != owner {
        grant_runtime(&pool, &runtime).await?;
    }
    pool.close().await;
    Ok(())
}

fn runtime_role(url: &str) -> anyhow::Result<String> {
    let url = reqwest::Url::parse(url).map_err(|e| anyhow::anyhow!("database.url: {e}"))?;
    let user = url.username();
    if user.is_empty() {
        anyhow::bail!("database.url must name the runtime role (postgres://ROLE@host/db)");
    }
    Ok(user.to_string())
}

/// Quotes an SQL identifier.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

async fn grant_runtime(pool: &PgPool, role: &str) -> anyhow::Result<()> {
    let r = quote_ident(role);
    for stmt in [
        format!("GRANT USAGE ON SCHEMA public TO {r}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r}"),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r}"),
        format!("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {r}"),
        format!("REVOKE ALL ON _sqlx_migrations FROM {r}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(stmt)).execute(pool).await?;
    }
    let bypass: bool =
        sqlx::query_scalar("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = $1")
            .bind(role)
            .fetch_optional(pool)
            .await?
            .unwrap_or(false);
    if bypass {
        anyhow::bail!(
            "the runtime role {role} is a superuser or has BYPASSRLS: row-level security would not apply"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_sql_sets_the_scope() {
        let id = CustomerId::new();
        let sql = begin_sql(Scope::Tenant(id), &[]);
        assert!(sql.starts_with("BEGIN;"));
        assert!(sql.contains(&format!("'app.customer_id', '{id}'")));
        assert!(sql.contains("'app.platform_admin', 'off'"));
        assert!(begin_sql(Scope::System, &[]).contains("'app.customer_id', ''"));
        assert!(begin_sql(Scope::PlatformAdmin, &[]).contains("'app.platform_admin', 'on'"));
        let with = begin_sql(Scope::System, &[("jit", "off")]);
        assert!(with.ends_with(", set_config('jit', 'off', true)"), "{with}");
    }

    #[test]
    fn runtime_role_is_the_url_user() {
        assert_eq!(
            runtime_role("postgres://svc_app@localhost/db").unwrap(),
            "svc_app"
        );
        assert!(runtime_role("postgres://localhost/db").is_err());
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
