//! Tenant-scoped reads in one round trip.
//!
//! A read through the main pool costs three round trips: `BEGIN` with the scope, the query, and
//! the rollback that sqlx sends with its check of every released connection. sqlx ends every
//! statement with a Sync and waits for its answer before sending the next, so the scope cannot
//! travel with the query; and each Sync costs the server a cycle of its own (a flush, a
//! ReadyForQuery, statistics). This pool's connections ([`super::wire`]) send the scope
//! statement and the query back to back and end them with one Sync: the server runs them as one
//! implicit transaction, answers once, and ends the transaction, with the scope set by
//! `set_config(..., true)` dying with it exactly as with [`super::begin`]. The same statement
//! makes the transaction read-only.
//!
//! Use it for a handler's single read query (a get, a list page), and through [`Reads::write`]
//! for a change made by one statement (data-modifying CTEs included), which the same Sync
//! commits. Anything that needs several statements, or a read and a write in one snapshot,
//! uses [`super::begin`].
//!
//! This module must never run a query without the scope statement before it in the same
//! pipeline, nor return to the pool a connection whose pipeline did not complete (a read
//! cancelled half-way closes its connection instead). Queries are `&'static str`: no caller text
//! reaches SQL, and each connection's cache of prepared statements is bounded by the program's
//! own queries.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use postgres_types::ToSql;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Scope;
use super::wire::{Conn, DbError, ReadRow, Settings};
use crate::config::DatabaseConfig;
use crate::lock;

/// Sets the scope and makes the transaction read-only; the first statement of every read.
const SCOPE_SQL: &str = "SELECT set_config('app.customer_id', $1, true), \
     set_config('app.platform_admin', $2, true), \
     set_config('transaction_read_only', 'on', true)";

/// Sets the scope of a write; the first statement of every write.
const WRITE_SCOPE_SQL: &str = "SELECT set_config('app.customer_id', $1, true), \
     set_config('app.platform_admin', $2, true)";

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// No connection became free (or could be opened) within `database.acquire_timeout_ms`.
    #[error("no database connection for reads became available in time")]
    Busy,
    #[error("{0}")]
    Db(DbError),
    #[error("database connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("database protocol: {0}")]
    Protocol(String),
    /// A parameter or a column did not fit the statement (a bug in the calling code).
    #[error("{0}")]
    Decode(String),
}

/// The pool of pipelined read connections. Cheap to clone; connections open on first use.
#[derive(Clone)]
pub struct Reads {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    idle: Mutex<Vec<Conn>>,
    permits: Arc<Semaphore>,
    acquire_timeout: Duration,
}

/// A connection lent to one read. It goes back to the pool only when its frame completed.
struct Lease<'a> {
    conn: Option<Conn>,
    pool: &'a Inner,
    complete: bool,
    /// Taken from the idle list rather than opened for this read.
    reused: bool,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && self.complete
            && !conn.is_broken()
        {
            lock(&self.pool.idle).push(conn);
        }
    }
}

impl Lease<'_> {
    fn conn(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until dropped")
    }
}

impl Reads {
    /// A pool for `cfg.url` of at most `cfg.read_connections` connections. Fails on a URL or
    /// TLS setting it cannot honour, naming it.
    pub fn new(cfg: &DatabaseConfig) -> anyhow::Result<Reads> {
        Ok(Reads {
            inner: Arc::new(Inner {
                settings: super::settings::from_url(cfg.url.expose())?,
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(cfg.read_connections as usize)),
                acquire_timeout: Duration::from_millis(cfg.acquire_timeout_ms),
            }),
        })
    }

    /// At most one row of `sql` with `params`, read within `scope`.
    pub async fn one(
        &self,
        scope: Scope,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<ReadRow>, ReadError> {
        Ok(self.all(scope, sql, params).await?.into_iter().next())
    }

    /// Every row of `sql` with `params`, read within `scope`.
    pub async fn all(
        &self,
        scope: Scope,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<ReadRow>, ReadError> {
        match self.frame(true, (SCOPE_SQL, scope), sql, params).await {
            // An idle connection the server has since closed (a restart, an idle timeout):
            // reads are safe to repeat, once, on a new connection.
            (Err(ReadError::Io(_) | ReadError::Protocol(_)), true) => {
                metrics::counter!("db_read_retries_total").increment(1);
                self.frame(false, (SCOPE_SQL, scope), sql, params).await.0
            }
            (result, _) => result,
        }
    }

    /// Runs `sql`, one statement that changes data, with `params` within `scope`, and commits
    /// it in the same round trip (the Sync ends the implicit transaction; an error rolls all of
    /// it back). Returns the statement's rows.
    ///
    /// A write is never repeated: after a failure the server may or may not have committed it.
    /// A connection that fails (the server restarted, say) makes the pool drop its other idle
    /// connections too, so one failure is seen rather than one per idle connection.
    pub async fn write(
        &self,
        scope: Scope,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<ReadRow>, ReadError> {
        let (result, _) = self
            .frame(true, (WRITE_SCOPE_SQL, scope), sql, params)
            .await;
        if matches!(result, Err(ReadError::Io(_) | ReadError::Protocol(_))) {
            lock(&self.inner.idle).clear();
        }
        result
    }

    /// One frame: `scope`'s statement, then `sql`, under one Sync, on a leased connection
    /// (an idle one if `reuse`). Also tells whether the connection was an idle one.
    async fn frame(
        &self,
        reuse: bool,
        (scope_sql, scope): (&'static str, Scope),
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> (Result<Vec<ReadRow>, ReadError>, bool) {
        let (customer, admin) = scope.settings();
        let scope_params: [&(dyn ToSql + Sync); 2] = [&customer, &admin];
        let mut lease = match self.lease(reuse).await {
            Ok(lease) => lease,
            Err(e) => return (Err(e), false),
        };
        let result = lease
            .conn()
            .pipeline((scope_sql, &scope_params), sql, params)
            .await;
        lease.complete = !lease.conn().is_broken();
        (result, lease.reused)
    }

    /// A connection for one read: an idle one if `reuse` and there is one, else a new one.
    async fn lease(&self, reuse: bool) -> Result<Lease<'_>, ReadError> {
        let inner = &*self.inner;
        tokio::time::timeout(inner.acquire_timeout, async {
            let permit = inner
                .permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| ReadError::Busy)?;
            let idle = if reuse { lock(&inner.idle).pop() } else { None };
            let (conn, reused) = match idle {
                Some(c) => (c, true),
                None => {
                    let conn = Conn::connect(&inner.settings).await?;
                    metrics::counter!("db_read_connections_opened_total").increment(1);
                    (conn, false)
                }
            };
            Ok(Lease {
                conn: Some(conn),
                pool: inner,
                complete: false,
                reused,
                _permit: permit,
            })
        })
        .await
        .map_err(|_| {
            metrics::counter!("db_read_pool_timeouts_total").increment(1);
            ReadError::Busy
        })?
    }

    /// Connections open now (idle ones; for tests and metrics).
    pub fn idle_connections(&self) -> usize {
        lock(&self.inner.idle).len()
    }
}

impl crate::error::AsConstraint for ReadError {
    fn constraint(&self) -> Option<&str> {
        match self {
            ReadError::Db(e) => e.constraint.as_deref(),
            _ => None,
        }
    }
}

impl From<ReadError> for crate::error::ApiError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Busy => {
                tracing::warn!("database read pool timed out");
                Self::unavailable("the database is busy; retry shortly")
            }
            other => Self::internal(other),
        }
    }
}
