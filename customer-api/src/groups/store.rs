//! SQL for client groups and their memberships.

use shared_model::error::{ApiError, ResultExt};
use shared_model::events::client::Membership;
use shared_model::events::tenant::Group;
use shared_model::ids::{ClientId, CustomerId, GroupId};
use sqlx::PgConnection;
use time::OffsetDateTime;

const COLUMNS: &str = "g.group_id AS id, g.customer_id, g.name, g.description, g.price_list_id,
    g.priority, (SELECT count(*) FROM client_group_members m
                  WHERE m.customer_id = g.customer_id AND m.group_id = g.group_id) AS member_count,
    g.version, g.created_at, g.updated_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: GroupId,
    customer_id: CustomerId,
    name: String,
    description: Option<String>,
    price_list_id: Option<String>,
    priority: i32,
    member_count: i64,
    version: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<Row> for Group {
    fn from(r: Row) -> Group {
        Group {
            id: r.id,
            customer_id: r.customer_id,
            name: r.name,
            description: r.description,
            price_list_id: r.price_list_id,
            priority: r.priority,
            member_count: r.member_count,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

pub async fn upsert(conn: &mut PgConnection, g: &Group) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO client_groups (customer_id, group_id, name, description, price_list_id,
             priority, version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (customer_id, group_id) DO UPDATE SET name = $3, description = $4,
             price_list_id = $5, priority = $6, version = $7, updated_at = $9",
    )
    .bind(g.customer_id)
    .bind(g.id)
    .bind(&g.name)
    .bind(&g.description)
    .bind(&g.price_list_id)
    .bind(g.priority)
    .bind(g.version)
    .bind(g.created_at)
    .bind(g.updated_at)
    .execute(conn)
    .await
    .on_constraint("client_groups_name_key", || {
        ApiError::conflict("CONFLICT", "a group with this name already exists")
    })?;
    Ok(())
}

pub async fn find(
    conn: &mut PgConnection,
    customer: CustomerId,
    id: GroupId,
    lock: bool,
) -> Result<Option<Group>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM client_groups g WHERE g.customer_id = $1 AND g.group_id = $2{}",
        if lock { " FOR UPDATE OF g" } else { "" }
    );
    Ok(sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(customer)
        .bind(id)
        .fetch_optional(conn)
        .await?
        .map(Group::from))
}

/// Groups by name (case-insensitive), after the position `(lower(name), id)`.
pub async fn list(
    conn: &mut PgConnection,
    customer: CustomerId,
    after: Option<(String, GroupId)>,
    limit: i64,
) -> Result<Vec<Group>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM client_groups g WHERE g.customer_id = $1
            AND ($2::text IS NULL OR (lower(g.name), g.group_id) > ($2, $3))
          ORDER BY lower(g.name), g.group_id LIMIT $4"
    );
    let (name, id) = after.unzip();
    Ok(sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(customer)
        .bind(name)
        .bind(id)
        .bind(limit + 1)
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(Group::from)
        .collect())
}

pub async fn delete(
    conn: &mut PgConnection,
    customer: CustomerId,
    id: GroupId,
) -> Result<(), ApiError> {
    sqlx::query("DELETE FROM client_groups WHERE customer_id = $1 AND group_id = $2")
        .bind(customer)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    customer_id: CustomerId,
    client_id: ClientId,
    group_id: GroupId,
    assigned_at: OffsetDateTime,
    assigned_by: String,
}

impl From<MemberRow> for Membership {
    fn from(r: MemberRow) -> Membership {
        Membership {
            customer_id: r.customer_id,
            client_id: r.client_id,
            group_id: r.group_id,
            assigned_at: r.assigned_at,
            assigned_by: r.assigned_by,
        }
    }
}

/// Adds a membership; `None` if the client already was a member.
pub async fn add_member(
    conn: &mut PgConnection,
    m: &Membership,
) -> Result<Option<Membership>, ApiError> {
    Ok(sqlx::query_as::<_, MemberRow>(
        "INSERT INTO client_group_members (customer_id, group_id, client_id, assigned_at, assigned_by)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING
         RETURNING customer_id, client_id, group_id, assigned_at, assigned_by",
    )
    .bind(m.customer_id)
    .bind(m.group_id)
    .bind(m.client_id)
    .bind(m.assigned_at)
    .bind(&m.assigned_by)
    .fetch_optional(conn)
    .await?
    .map(Membership::from))
}

/// Removes a membership, returning it if it existed.
pub async fn remove_member(
    conn: &mut PgConnection,
    customer: CustomerId,
    group: GroupId,
    client: ClientId,
) -> Result<Option<Membership>, ApiError> {
    Ok(sqlx::query_as::<_, MemberRow>(
        "DELETE FROM client_group_members
          WHERE customer_id = $1 AND group_id = $2 AND client_id = $3
         RETURNING customer_id, client_id, group_id, assigned_at, assigned_by",
    )
    .bind(customer)
    .bind(group)
    .bind(client)
    .fetch_optional(conn)
    .await?
    .map(Membership::from))
}

pub async fn member(
    conn: &mut PgConnection,
    customer: CustomerId,
    group: GroupId,
    client: ClientId,
) -> Result<Option<Membership>, ApiError> {
    Ok(sqlx::query_as::<_, MemberRow>(
        "SELECT customer_id, client_id, group_id, assigned_at, assigned_by
           FROM client_group_members WHERE customer_id = $1 AND group_id = $2 AND client_id = $3",
    )
    .bind(customer)
    .bind(group)
    .bind(client)
    .fetch_optional(conn)
    .await?
    .map(Membership::from))
}

/// A group's members by client id, after `after`.
pub async fn members(
    conn: &mut PgConnection,
    customer: CustomerId,
    group: GroupId,
    after: Option<ClientId>,
    limit: i64,
) -> Result<Vec<Membership>, ApiError> {
    Ok(sqlx::query_as::<_, MemberRow>(
        "SELECT customer_id, client_id, group_id, assigned_at, assigned_by
           FROM client_group_members WHERE customer_id = $1 AND group_id = $2
            AND ($3::uuid IS NULL OR client_id > $3)
          ORDER BY client_id LIMIT $4",
    )
    .bind(customer)
    .bind(group)
    .bind(after)
    .bind(limit + 1)
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(Membership::from)
    .collect())
}

/// Every member of a group (for the events of a group's deletion).
pub async fn all_members(
    conn: &mut PgConnection,
    customer: CustomerId,
    group: GroupId,
) -> Result<Vec<Membership>, ApiError> {
    members(conn, customer, group, None, i64::MAX - 1).await
}

/// A client's groups with the time the client joined each.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientGroup {
    pub group_id: GroupId,
    pub name: String,
    pub price_list_id: Option<String>,
    pub priority: i32,
    pub assigned_at: OffsetDateTime,
}

/// The client's groups in precedence order: highest priority first, then oldest membership,
/// then group id (so the order is total and stable).
pub async fn client_groups(
    conn: &mut PgConnection,
    customer: CustomerId,
    client: ClientId,
) -> Result<Vec<ClientGroup>, ApiError> {
    Ok(sqlx::query_as::<_, ClientGroup>(
        "SELECT g.group_id, g.name, g.price_list_id, g.priority, m.assigned_at
           FROM client_group_members m
           JOIN client_groups g ON g.customer_id = m.customer_id AND g.group_id = m.group_id
          WHERE m.customer_id = $1 AND m.client_id = $2
          ORDER BY g.priority DESC, m.assigned_at, g.group_id",
    )
    .bind(customer)
    .bind(client)
    .fetch_all(conn)
    .await?)
}
