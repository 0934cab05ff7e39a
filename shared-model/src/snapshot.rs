//! Answering snapshot requests: any service can send the whole state of its entities to a
//! service that rebuilds a projection of them (search-sync's reindex), without downtime and at
//! a bounded rate. The events are in [`crate::events::snapshot`].
//!
//! A service lists its [`Source`]s in `Service::snapshots`; the kit then binds
//! `snapshot.requested` and runs the answering job:
//!
//! - a request naming some of the service's entities records one `snapshot_runs` row for each
//!   (in the request's consumer transaction, with `snapshot.started` and the counts), so a
//!   redelivered request is answered once;
//! - the job takes the oldest unfinished row (`FOR UPDATE SKIP LOCKED`: replicas share the
//!   work), reads the next `snapshot.page_size` entities after the row's position in the order
//!   of their primary key `(customer_id, id)`, writes them as one `snapshot.page` event and the
//!   new position in the same transaction, and sleeps so that no more than
//!   `snapshot.rows_per_second` entities leave per second; a crash resumes after the last
//!   committed page;
//! - the transaction that writes the last page of the answer's last entity also writes
//!   `snapshot.completed` with what was sent.
//!
//! Each page is read in a transaction of its own: an entity changed between two pages is sent
//! as it was when its page was read, and the events of that change follow as usual, so a
//! consumer applying both under the projection contract (newer version wins) ends at the
//! newest state.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use tokio_util::sync::CancellationToken;

use crate::bus::{Handler, Subscription};
use crate::config::SnapshotConfig;
use crate::db::{self, Scope};
use crate::error::ApiError;
use crate::events::snapshot::{
    EntityCount, SNAPSHOT_COMPLETED, SNAPSHOT_PAGE, SNAPSHOT_REQUESTED, SNAPSHOT_STARTED,
    SnapshotPage, SnapshotProgress, SnapshotRequest,
};
use crate::ids::CustomerId;
use crate::outbox::Cause;

/// Where a page ends: the primary key `(customer_id, id)` of its last entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub customer: uuid::Uuid,
    pub id: uuid::Uuid,
}

/// One kind of entity a service can send, stored in a table keyed by `(customer_id, <id>)`.
pub trait Source: Send + Sync + 'static {
    /// The entity's name in requests and pages (`customer`, `client`, ...).
    fn entity(&self) -> &'static str;

    /// The table, for counting (`clients`).
    fn table(&self) -> &'static str;

    /// Up to `limit` entities after `after` in `(customer_id, id)` order, of `customer` only
    /// when given, each with its position and its JSON (the data of its `*.created` event).
    /// [`keyset`] builds the statement's conditions.
    fn page<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        customer: Option<CustomerId>,
        after: Option<Position>,
        limit: i64,
    ) -> BoxFuture<'c, Result<Page, ApiError>>;
}

/// A page of entities, each with its position and its JSON.
pub type Page = Vec<(Position, serde_json::Value)>;

/// How a [`TableSource`] reads a page (the arguments of [`Source::page`]).
pub type PageFn = for<'c> fn(
    &'c mut PgConnection,
    Option<CustomerId>,
    Option<Position>,
    i64,
) -> BoxFuture<'c, Result<Page, ApiError>>;

/// A [`Source`] given by its entity's name, its table and its page function: all a resource
/// has to write.
pub struct TableSource {
    pub entity: &'static str,
    pub table: &'static str,
    pub page: PageFn,
}

impl Source for TableSource {
    fn entity(&self) -> &'static str {
        self.entity
    }

    fn table(&self) -> &'static str {
        self.table
    }

    fn page<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        customer: Option<CustomerId>,
        after: Option<Position>,
        limit: i64,
    ) -> BoxFuture<'c, Result<Page, ApiError>> {
        (self.page)(conn, customer, after, limit)
    }
}

/// One entity of a page: the position of `(customer, id)` and `value` as JSON.
pub fn item(
    customer: uuid::Uuid,
    id: uuid::Uuid,
    value: &impl serde::Serialize,
) -> Result<(Position, serde_json::Value), ApiError> {
    let json = serde_json::to_value(value).map_err(ApiError::internal)?;
    Ok((Position { customer, id }, json))
}

/// A page's statement: `select` (a `SELECT ... FROM t` whose key columns are `customer` and
/// `id`) with the tenant, the position and the order by key, `limit` rows.
pub fn keyset(
    select: &str,
    customer_column: &str,
    id_column: &str,
    customer: Option<CustomerId>,
    after: Option<Position>,
    limit: i64,
) -> QueryBuilder<Postgres> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new(select);
    q.push(" WHERE true");
    if let Some(c) = customer {
        q.push(format!(" AND {customer_column} = ")).push_bind(c);
    }
    if let Some(p) = after {
        q.push(format!(" AND ({customer_column}, {id_column}) > ("))
            .push_bind(p.customer)
            .push(", ")
            .push_bind(p.id)
            .push(")");
    }
    q.push(format!(" ORDER BY {customer_column}, {id_column} LIMIT "))
        .push_bind(limit);
    q
}

/// The sources of a service, shared by its request consumer and its job.
pub type Sources = Arc<Vec<Arc<dyn Source>>>;

/// The consumer of `snapshot.requested` (queue `<service>-snapshot-requests`: every answering
/// service gets each request, even where services share a queue prefix).
pub fn subscription(service: &'static str, sources: Sources) -> Subscription {
    let handler: Handler = Arc::new(move |conn, event| {
        let sources = sources.clone();
        async move {
            let request: SnapshotRequest = serde_json::from_value(event.data.clone())?;
            accept(conn, service, &sources, &request, event)
                .await
                .map_err(ApiError::into_anyhow)
        }
        .boxed()
    });
    Subscription::new(&format!("{service}-snapshot-requests")).on(SNAPSHOT_REQUESTED, handler)
}

/// Records the runs of a request and announces them; nothing when the service owns none of the
/// entities asked for.
async fn accept(
    conn: &mut PgConnection,
    service: &'static str,
    sources: &[Arc<dyn Source>],
    request: &SnapshotRequest,
    event: &crate::envelope::CloudEvent,
) -> Result<(), ApiError> {
    db::set_scope(conn, Scope::System).await?;
    let mut counts = Vec::new();
    for (position, source) in sources
        .iter()
        .filter(|s| request.entities.iter().any(|e| e == s.entity()))
        .enumerate()
    {
        let mut q: QueryBuilder<Postgres> = QueryBuilder::new(format!(
            "SELECT count(*) FROM {} WHERE true",
            source.table()
        ));
        if let Some(c) = request.customer_id {
            q.push(" AND customer_id = ").push_bind(c);
        }
        let count: i64 = q.build_query_scalar().fetch_one(&mut *conn).await?;
        let inserted = sqlx::query(
            "INSERT INTO snapshot_runs (snapshot_id, entity, customer_id, position, expected)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(request.snapshot_id)
        .bind(source.entity())
        .bind(request.customer_id)
        .bind(position as i32)
        .bind(count)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if inserted == 1 {
            counts.push(EntityCount {
                entity: source.entity().to_string(),
                count,
            });
        }
    }
    if counts.is_empty() {
        return Ok(());
    }
    tracing::info!(snapshot_id = %request.snapshot_id, customer_id = ?request.customer_id,
        ?counts, "snapshot requested: answering");
    let progress = SnapshotProgress {
        snapshot_id: request.snapshot_id,
        source: service.to_string(),
        customer_id: request.customer_id,
        counts,
    };
    Cause::reaction(service, event)
        .emit(
            conn,
            SNAPSHOT_STARTED,
            request.snapshot_id,
            request.customer_id,
            &progress,
        )
        .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Run {
    snapshot_id: uuid::Uuid,
    entity: String,
    customer_id: Option<CustomerId>,
    pages: i64,
    after_customer: Option<uuid::Uuid>,
    after_id: Option<uuid::Uuid>,
}

/// The answering job: sends pages until `stop`, at most `rows_per_second` entities a second.
pub async fn run(
    pool: PgPool,
    service: &'static str,
    sources: Sources,
    cfg: SnapshotConfig,
    stop: CancellationToken,
) {
    let idle = Duration::from_millis(cfg.poll_interval_ms);
    loop {
        let pause = match step(&pool, service, &sources, &cfg).await {
            Ok(Some(rows)) => Duration::from_secs_f64(rows as f64 / f64::from(cfg.rows_per_second)),
            Ok(None) => idle,
            Err(e) => {
                let error = format!("{:#}", e.into_anyhow());
                tracing::warn!(error, "sending a snapshot page failed; retrying");
                idle
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Sends the next page of the oldest unfinished run; the rows sent, or `None` when there is
/// none.
async fn step(
    pool: &PgPool,
    service: &'static str,
    sources: &[Arc<dyn Source>],
    cfg: &SnapshotConfig,
) -> Result<Option<usize>, ApiError> {
    let mut tx = db::begin(pool, Scope::System).await?;
    let Some(run) = sqlx::query_as::<_, Run>(
        "SELECT snapshot_id, entity, customer_id, pages, after_customer, after_id
           FROM snapshot_runs WHERE NOT done
          ORDER BY created_at, position LIMIT 1 FOR UPDATE SKIP LOCKED",
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(None);
    };
    let after = run
        .after_customer
        .zip(run.after_id)
        .map(|(customer, id)| Position { customer, id });
    let rows = match sources.iter().find(|s| s.entity() == run.entity) {
        Some(source) => {
            source
                .page(&mut tx, run.customer_id, after, i64::from(cfg.page_size))
                .await?
        }
        // A source removed since the request: nothing more of it is sent.
        None => Vec::new(),
    };
    let last = rows.len() < cfg.page_size as usize;
    let end = rows.last().map(|(p, _)| *p).or(after);
    let sent = rows.len();
    let page = SnapshotPage {
        snapshot_id: run.snapshot_id,
        source: service.to_string(),
        customer_id: run.customer_id,
        entity: run.entity.clone(),
        sequence: run.pages + 1,
        items: rows.into_iter().map(|(_, item)| item).collect(),
        last,
    };
    let cause = Cause::job(service);
    let mut events = vec![cause.event(SNAPSHOT_PAGE, run.snapshot_id, run.customer_id, &page)?];
    sqlx::query(
        "UPDATE snapshot_runs SET sent = sent + $3, pages = pages + 1, after_customer = $4,
                after_id = $5, done = $6
          WHERE snapshot_id = $1 AND entity = $2",
    )
    .bind(run.snapshot_id)
    .bind(&run.entity)
    .bind(sent as i64)
    .bind(end.map(|p| p.customer))
    .bind(end.map(|p| p.id))
    .bind(last)
    .execute(&mut *tx)
    .await?;
    if last {
        let runs: Vec<(String, i64, bool)> = sqlx::query_as(
            "SELECT entity, sent, done FROM snapshot_runs WHERE snapshot_id = $1 ORDER BY position",
        )
        .bind(run.snapshot_id)
        .fetch_all(&mut *tx)
        .await?;
        if runs.iter().all(|(_, _, done)| *done) {
            let counts = runs
                .into_iter()
                .map(|(entity, count, _)| EntityCount { entity, count })
                .collect();
            tracing::info!(snapshot_id = %run.snapshot_id, ?counts, "snapshot sent");
            let progress = SnapshotProgress {
                snapshot_id: run.snapshot_id,
                source: service.to_string(),
                customer_id: run.customer_id,
                counts,
            };
            events.push(cause.event(
                SNAPSHOT_COMPLETED,
                run.snapshot_id,
                run.customer_id,
                &progress,
            )?);
        }
    }
    crate::outbox::write(&mut tx, &events).await?;
    tx.commit().await?;
    metrics::counter!("snapshot_rows_sent_total", "entity" => run.entity).increment(sent as u64);
    Ok(Some(sent.max(1)))
}
