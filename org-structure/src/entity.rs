//! What the three owned tables (locations, departments, contacts) share: finding an owner's
//! row, the rows pointing to another, detaching them, deleting one and deleting all of an
//! owner's, each change with its event. Each store says once, in its [`Entity`] impl, which
//! table, columns, row type and events it has.

use axum::http::StatusCode;
use axum::response::Response;
use futures_util::future::BoxFuture;
use serde::Serialize;
use shared_model::auth::Caller;
use shared_model::db;
use shared_model::error::ApiError;
use shared_model::events::{CloudEvent, EventType, Updated};
use shared_model::http::with_etag;
use shared_model::ids::{ClientId, CustomerId};
use shared_model::outbox::{self, Cause};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Postgres};
use time::OffsetDateTime;

use crate::owners::{EntityPath, Owner};

/// An entity with an owner, a version and its own table.
pub trait Entity: Serialize + Clone + Send + Sync + Unpin + Sized + 'static {
    type Id: EntityId<Entity = Self>;
    type Row: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin + Into<Self>;
    const TABLE: &'static str;
    /// The id column.
    const ID: &'static str;
    const COLUMNS: &'static str;
    const UPDATED: EventType;
    const DELETED: EventType;
    /// What a 404 calls it.
    const NOUN: &'static str;

    fn id(&self) -> Self::Id;
    fn version(&self) -> i64;
    fn customer_id(&self) -> CustomerId;
    /// Counts a change: the next version, changed now.
    fn touch(&mut self, now: OffsetDateTime);
    /// Writes the entity (insert or full update).
    fn save<'c>(conn: &'c mut PgConnection, e: &'c Self) -> BoxFuture<'c, Result<(), ApiError>>;
}

/// Implements [`Entity`] for a store's entity and [`EntityId`] for its id, from the store's
/// `Row`, `COLUMNS` and `save` and the names given:
/// `entity!(Location, LocationId, "location", "locations", "location_id", LOCATION_UPDATED,
/// LOCATION_DELETED)`.
macro_rules! entity {
    ($entity:ident, $id:ident, $noun:literal, $table:literal, $id_column:literal, $updated:ident, $deleted:ident) => {
        impl $crate::entity::Entity for $entity {
            type Id = $id;
            type Row = Row;
            const TABLE: &'static str = $table;
            const ID: &'static str = $id_column;
            const COLUMNS: &'static str = COLUMNS;
            const UPDATED: shared_model::events::EventType = ev::$updated;
            const DELETED: shared_model::events::EventType = ev::$deleted;
            const NOUN: &'static str = $noun;

            fn id(&self) -> $id {
                self.id
            }

            fn version(&self) -> i64 {
                self.version
            }

            fn customer_id(&self) -> shared_model::ids::CustomerId {
                self.customer_id
            }

            fn touch(&mut self, now: time::OffsetDateTime) {
                self.version += 1;
                self.updated_at = now;
            }

            fn save<'c>(
                conn: &'c mut sqlx::PgConnection,
                e: &'c Self,
            ) -> futures_util::future::BoxFuture<'c, Result<(), ApiError>> {
                Box::pin(save(conn, e))
            }
        }

        impl $crate::entity::EntityId for $id {
            type Entity = $entity;
        }
    };
}
pub(crate) use entity;

/// The id of an [`Entity`]: a typed id names its table.
pub trait EntityId:
    Copy + std::fmt::Display + Send + sqlx::Type<Postgres> + for<'q> sqlx::Encode<'q, Postgres>
{
    type Entity: Entity<Id = Self>;
}

/// The owner's entity with this id, optionally locked for update.
pub async fn find<I: EntityId>(
    conn: &mut PgConnection,
    owner: &Owner,
    id: I,
    lock: bool,
) -> Result<Option<I::Entity>, ApiError> {
    let sql = format!(
        "SELECT {} FROM {} WHERE customer_id = $1 AND owner_id = $2 AND {} = $3{}",
        I::Entity::COLUMNS,
        I::Entity::TABLE,
        I::Entity::ID,
        if lock { " FOR UPDATE" } else { "" }
    );
    Ok(
        sqlx::query_as::<_, <I::Entity as Entity>::Row>(sqlx::AssertSqlSafe(sql))
            .bind(owner.customer)
            .bind(owner.id())
            .bind(id)
            .fetch_optional(conn)
            .await?
            .map(Into::into),
    )
}

/// [`find`], or 404 naming the entity.
pub async fn existing<I: EntityId>(
    conn: &mut PgConnection,
    owner: &Owner,
    id: I,
    lock: bool,
) -> Result<I::Entity, ApiError> {
    find(conn, owner, id, lock)
        .await?
        .ok_or_else(|| ApiError::not_found(I::Entity::NOUN))
}

/// A `GET` of one entity: the caller's read scope over the owner, the entity with its ETag,
/// or 404.
pub async fn get<I: EntityId>(
    pool: &PgPool,
    caller: &Caller,
    path: EntityPath<I>,
) -> Result<Response, ApiError> {
    let owner = path.owner();
    let mut tx = db::begin(pool, owner.read_scope(caller)?).await?;
    let e = existing(&mut tx, &owner, path.id(), false).await?;
    drop(tx);
    Ok(with_etag(StatusCode::OK, e.version(), &e))
}

/// The owner's entities whose `column` is `id`, locked, oldest first.
pub async fn pointing_to<E: Entity>(
    conn: &mut PgConnection,
    owner: &Owner,
    column: &str,
    id: uuid::Uuid,
) -> Result<Vec<E>, ApiError> {
    let sql = format!(
        "SELECT {} FROM {} WHERE customer_id = $1 AND owner_id = $2 AND {column} = $3
          ORDER BY {} FOR UPDATE",
        E::COLUMNS,
        E::TABLE,
        E::ID
    );
    Ok(sqlx::query_as::<_, E::Row>(sqlx::AssertSqlSafe(sql))
        .bind(owner.customer)
        .bind(owner.id())
        .bind(id)
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// Clears a reference of each of `entities` (`change` sets it to None), publishing their
/// `*.updated` naming `field`.
pub async fn detach<E: Entity>(
    conn: &mut PgConnection,
    entities: Vec<E>,
    field: &str,
    change: impl Fn(&mut E),
    cause: &Cause,
) -> Result<(), ApiError> {
    let now = shared_model::db::now();
    for mut e in entities {
        change(&mut e);
        e.touch(now);
        E::save(conn, &e).await?;
        cause
            .emit(
                conn,
                E::UPDATED,
                e.id(),
                e.customer_id(),
                &Updated::of(&e, &[field]),
            )
            .await?;
    }
    Ok(())
}

/// Deletes an entity; its `*.deleted` carries it at its deletion's version.
pub async fn delete<E: Entity>(
    conn: &mut PgConnection,
    e: &E,
    cause: &Cause,
) -> Result<(), ApiError> {
    let sql = format!(
        "DELETE FROM {} WHERE customer_id = $1 AND {} = $2",
        E::TABLE,
        E::ID
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(e.customer_id())
        .bind(e.id())
        .execute(&mut *conn)
        .await?;
    let mut gone = e.clone();
    gone.touch(shared_model::db::now());
    cause
        .emit(conn, E::DELETED, e.id(), e.customer_id(), &gone)
        .await?;
    Ok(())
}

/// Deletes every entity of the customer (with `client` None: and of all its clients) and
/// writes their `*.deleted` events; returns how many. What points to them must be gone first.
pub async fn delete_all_of<E: Entity>(
    conn: &mut PgConnection,
    customer: CustomerId,
    client: Option<ClientId>,
    cause: &Cause,
) -> Result<usize, ApiError> {
    let sql = format!(
        "DELETE FROM {} WHERE customer_id = $1 AND ($2::uuid IS NULL OR client_id = $2)
         RETURNING {}",
        E::TABLE,
        E::COLUMNS
    );
    let gone = sqlx::query_as::<_, E::Row>(sqlx::AssertSqlSafe(sql))
        .bind(customer)
        .bind(client)
        .fetch_all(&mut *conn)
        .await?;
    let now = shared_model::db::now();
    let events = gone
        .into_iter()
        .map(|r| {
            let mut e: E = r.into();
            e.touch(now);
            cause.event(E::DELETED, e.id(), e.customer_id(), &e)
        })
        .collect::<Result<Vec<CloudEvent>, _>>()?;
    outbox::write(conn, &events).await?;
    Ok(events.len())
}
