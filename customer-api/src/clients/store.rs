//! SQL for clients and their tags. Every function takes the caller's
//! transaction (RLS scope set) and filters by customer explicitly.

use shared_model::error::{ApiError, ResultExt};
use shared_model::events::client::{Client, Revenue};
use shared_model::events::customer::{BusinessProfile, LogoReceipt};
use shared_model::ids::{ClientId, CustomerId, GroupId, TagId};
use shared_model::model::{
    ClientSource, ClientStatus, ClientType, CurrencyCode, Email, Locale, Phone,
};
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;

use crate::common::escape_like;

#[derive(sqlx::FromRow)]
struct Row {
    customer_id: CustomerId,
    client_id: ClientId,
    client_type: ClientType,
    name: String,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    locale: Option<String>,
    business_profile: Option<Json<BusinessProfile>>,
    external_id: Option<String>,
    status: ClientStatus,
    source: ClientSource,
    assignee: Option<String>,
    tags: Vec<String>,
    revenue_currency: Option<String>,
    revenue_total_minor: i64,
    purchase_count: i64,
    first_purchase_at: Option<OffsetDateTime>,
    last_purchase_at: Option<OffsetDateTime>,
    disabled: bool,
    provisioned_customer_id: Option<CustomerId>,
    logo: Option<Json<LogoReceipt>>,
    version: i64,
    created_at: OffsetDateTime,
    created_by: String,
    updated_at: OffsetDateTime,
    updated_by: String,
}

pub(super) fn stored<T>(field: &str, r: Result<T, &str>) -> Result<T, ApiError> {
    // Stored values were validated on the way in; a failure here is a bug, not bad input.
    r.map_err(|_| ApiError::internal(anyhow::anyhow!("stored client has an invalid {field}")))
}

impl Row {
    fn into_client(self) -> Result<Client, ApiError> {
        let revenue = match (
            self.revenue_currency,
            self.first_purchase_at,
            self.last_purchase_at,
        ) {
            (Some(c), Some(first), Some(last)) => Some(Revenue {
                currency: stored("currency", CurrencyCode::parse(&c))?,
                total_minor: self.revenue_total_minor,
                purchase_count: self.purchase_count,
                first_purchase_at: first,
                last_purchase_at: last,
            }),
            _ => None,
        };
        Ok(Client {
            id: self.client_id,
            customer_id: self.customer_id,
            client_type: self.client_type,
            name: self.name,
            first_name: self.first_name,
            last_name: self.last_name,
            email: self
                .email
                .map(|e| stored("email", Email::parse(&e)))
                .transpose()?,
            phone: self
                .phone
                .map(|p| stored("phone", Phone::parse(&p)))
                .transpose()?,
            locale: self
                .locale
                .map(|l| stored("locale", Locale::parse(&l)))
                .transpose()?,
            business_profile: self.business_profile.map(|b| b.0),
            external_id: self.external_id,
            status: self.status,
            source: self.source,
            assignee: self.assignee,
            tags: self.tags,
            revenue,
            disabled: self.disabled,
            provisioned_customer_id: self.provisioned_customer_id,
            logo: self.logo.map(|l| l.0),
            version: self.version,
            created_at: self.created_at,
            created_by: self.created_by,
            updated_at: self.updated_at,
            updated_by: self.updated_by,
        })
    }
}

const SELECT: &str = "SELECT c.customer_id, c.client_id, c.client_type, c.name, c.first_name,
        c.last_name, c.email, c.phone, c.locale, c.business_profile, c.external_id, c.status,
        c.source, c.assignee,
        ARRAY(SELECT t.name FROM client_tags ct
                JOIN tags t ON t.customer_id = ct.customer_id AND t.tag_id = ct.tag_id
               WHERE ct.customer_id = c.customer_id AND ct.client_id = c.client_id
               ORDER BY lower(t.name)) AS tags,
        c.revenue_currency, c.revenue_total_minor, c.purchase_count, c.first_purchase_at,
        c.last_purchase_at, c.disabled, c.provisioned_customer_id, c.logo, c.version, c.created_at,
        c.created_by, c.updated_at, c.updated_by
   FROM clients c";

fn conflicts<T>(r: Result<T, sqlx::Error>) -> Result<T, ApiError> {
    r.on_constraint("clients_external_id_key", || {
        ApiError::conflict(
            "CONFLICT",
            "externalId is already used by another client of this customer",
        )
    })
}

/// Inserts a client (its tags are written separately with `set_tags`).
#[tracing::instrument(skip_all, err(Display))]
pub async fn insert(conn: &mut PgConnection, c: &Client) -> Result<(), ApiError> {
    let r = sqlx::query(
        "INSERT INTO clients (customer_id, client_id, client_type, name, first_name, last_name,
             email, phone, locale, business_profile, external_id, status, source, assignee,
             disabled, version, created_at, created_by, updated_at, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                 $18, $19, $20)",
    )
    .bind(c.customer_id)
    .bind(c.id)
    .bind(c.client_type)
    .bind(&c.name)
    .bind(&c.first_name)
    .bind(&c.last_name)
    .bind(&c.email)
    .bind(&c.phone)
    .bind(&c.locale)
    .bind(c.business_profile.as_ref().map(Json))
    .bind(&c.external_id)
    .bind(c.status)
    .bind(c.source)
    .bind(&c.assignee)
    .bind(c.disabled)
    .bind(c.version)
    .bind(c.created_at)
    .bind(&c.created_by)
    .bind(c.updated_at)
    .bind(&c.updated_by)
    .execute(conn)
    .await;
    conflicts(r).map(|_| ())
}

/// Writes every mutable field of `c` (not its tags); the caller has bumped `version`.
#[tracing::instrument(skip_all, err(Display))]
pub async fn update(conn: &mut PgConnection, c: &Client) -> Result<(), ApiError> {
    let (currency, total, count, first, last) = match &c.revenue {
        Some(r) => (
            Some(r.currency.as_str()),
            r.total_minor,
            r.purchase_count,
            Some(r.first_purchase_at),
            Some(r.last_purchase_at),
        ),
        None => (None, 0, 0, None, None),
    };
    let r = sqlx::query(
        "UPDATE clients SET client_type = $3, name = $4, first_name = $5, last_name = $6,
             email = $7, phone = $8, locale = $9, business_profile = $10, external_id = $11,
             status = $12, source = $13, assignee = $14, revenue_currency = $15,
             revenue_total_minor = $16, purchase_count = $17, first_purchase_at = $18,
             last_purchase_at = $19, disabled = $20, provisioned_customer_id = $21,
             version = $22, updated_at = $23, updated_by = $24, logo = $25
          WHERE customer_id = $1 AND client_id = $2",
    )
    .bind(c.customer_id)
    .bind(c.id)
    .bind(c.client_type)
    .bind(&c.name)
    .bind(&c.first_name)
    .bind(&c.last_name)
    .bind(&c.email)
    .bind(&c.phone)
    .bind(&c.locale)
    .bind(c.business_profile.as_ref().map(Json))
    .bind(&c.external_id)
    .bind(c.status)
    .bind(c.source)
    .bind(&c.assignee)
    .bind(currency)
    .bind(total)
    .bind(count)
    .bind(first)
    .bind(last)
    .bind(c.disabled)
    .bind(c.provisioned_customer_id)
    .bind(c.version)
    .bind(c.updated_at)
    .bind(&c.updated_by)
    .bind(c.logo.as_ref().map(Json))
    .execute(conn)
    .await;
    conflicts(r).map(|_| ())
}

/// One client, optionally locked for update.
#[tracing::instrument(skip_all, err(Display))]
pub async fn find(
    conn: &mut PgConnection,
    customer: CustomerId,
    id: ClientId,
    lock: bool,
) -> Result<Option<Client>, ApiError> {
    let sql = format!(
        "{SELECT} WHERE c.customer_id = $1 AND c.client_id = $2{}",
        if lock { " FOR UPDATE OF c" } else { "" }
    );
    sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(customer)
        .bind(id)
        .fetch_optional(conn)
        .await?
        .map(Row::into_client)
        .transpose()
}

#[tracing::instrument(skip_all, err(Display))]
pub async fn delete(
    conn: &mut PgConnection,
    customer: CustomerId,
    id: ClientId,
) -> Result<(), ApiError> {
    sqlx::query("DELETE FROM clients WHERE customer_id = $1 AND client_id = $2")
        .bind(customer)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Filters of the client listing.
#[derive(Default)]
pub struct Filter {
    pub customer: Option<CustomerId>,
    /// Restricts to one client (client-bound tokens).
    pub only: Option<ClientId>,
    pub status: Option<ClientStatus>,
    pub client_type: Option<ClientType>,
    pub assignee: Option<String>,
    pub tag: Option<String>,
    pub group: Option<GroupId>,
    pub text: Option<String>,
    pub updated_since: Option<OffsetDateTime>,
    /// Position after which to continue (updatedAt, id), descending.
    pub after: Option<(OffsetDateTime, ClientId)>,
}

/// Clients, most recently updated first; fetches `limit + 1` to tell whether more follow.
#[tracing::instrument(skip_all, err(Display))]
pub async fn list(
    conn: &mut PgConnection,
    f: &Filter,
    limit: i64,
) -> Result<Vec<Client>, ApiError> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new(SELECT);
    q.push(" WHERE true");
    if let Some(c) = f.customer {
        q.push(" AND c.customer_id = ").push_bind(c);
    }
    if let Some(id) = f.only {
        q.push(" AND c.client_id = ").push_bind(id);
    }
    if let Some(s) = f.status {
        q.push(" AND c.status = ").push_bind(s);
    }
    if let Some(t) = f.client_type {
        q.push(" AND c.client_type = ").push_bind(t);
    }
    if let Some(a) = &f.assignee {
        q.push(" AND c.assignee = ").push_bind(a.clone());
    }
    if let Some(tag) = &f.tag {
        q.push(
            " AND EXISTS (SELECT 1 FROM client_tags ct JOIN tags t
                 ON t.customer_id = ct.customer_id AND t.tag_id = ct.tag_id
               WHERE ct.customer_id = c.customer_id AND ct.client_id = c.client_id
                 AND lower(t.name) = lower(",
        )
        .push_bind(tag.clone())
        .push("))");
    }
    if let Some(g) = f.group {
        q.push(
            " AND EXISTS (SELECT 1 FROM client_group_members m
               WHERE m.customer_id = c.customer_id AND m.client_id = c.client_id
                 AND m.group_id = ",
        )
        .push_bind(g)
        .push(")");
    }
    if let Some(text) = &f.text {
        let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
        q.push(
            " AND lower(c.name || ' ' || coalesce(c.email, '') || ' ' || coalesce(c.external_id, '')) LIKE ",
        )
        .push_bind(pattern);
    }
    if let Some(since) = f.updated_since {
        q.push(" AND c.updated_at >= ").push_bind(since);
    }
    if let Some((at, id)) = f.after {
        q.push(" AND (c.updated_at, c.client_id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY c.updated_at DESC, c.client_id DESC LIMIT ")
        .push_bind(limit + 1);
    q.build_query_as::<Row>()
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(Row::into_client)
        .collect()
}

/// Counts by one column of a customer's clients.
pub async fn count_by(
    conn: &mut PgConnection,
    customer: CustomerId,
    column: &'static str,
) -> Result<Vec<(String, i64)>, ApiError> {
    // `column` is one of the callers' constants, never input.
    let sql = format!(
        "SELECT {column}, count(*) FROM clients WHERE customer_id = $1 GROUP BY 1 ORDER BY 1"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(customer)
        .fetch_all(conn)
        .await?)
}

/// Revenue totals per currency: (currency, total, clients with purchases, purchases).
pub async fn revenue_totals(
    conn: &mut PgConnection,
    customer: CustomerId,
) -> Result<Vec<(String, i64, i64, i64)>, ApiError> {
    Ok(sqlx::query_as(
        "SELECT revenue_currency, sum(revenue_total_minor)::bigint, count(*),
                sum(purchase_count)::bigint
           FROM clients WHERE customer_id = $1 AND revenue_currency IS NOT NULL
          GROUP BY 1 ORDER BY 1",
    )
    .bind(customer)
    .fetch_all(conn)
    .await?)
}

/// Tag ids for names (case-insensitive); the names that do not exist come back as errors.
pub async fn tag_ids(
    conn: &mut PgConnection,
    customer: CustomerId,
    names: &[String],
) -> Result<(Vec<TagId>, Vec<usize>), ApiError> {
    let rows: Vec<(String, TagId)> = sqlx::query_as(
        "SELECT lower(name), tag_id FROM tags WHERE customer_id = $1 AND lower(name) = ANY($2)",
    )
    .bind(customer)
    .bind(names.iter().map(|n| n.to_lowercase()).collect::<Vec<_>>())
    .fetch_all(conn)
    .await?;
    let mut ids = Vec::new();
    let mut missing = Vec::new();
    for (i, n) in names.iter().enumerate() {
        match rows.iter().find(|(l, _)| *l == n.to_lowercase()) {
            Some((_, id)) => ids.push(*id),
            None => missing.push(i),
        }
    }
    Ok((ids, missing))
}

/// Replaces a client's tags.
pub async fn set_tags(
    conn: &mut PgConnection,
    customer: CustomerId,
    client: ClientId,
    tags: &[TagId],
    actor: &str,
    at: OffsetDateTime,
) -> Result<(), ApiError> {
    sqlx::query(
        "WITH gone AS (DELETE FROM client_tags WHERE customer_id = $1 AND client_id = $2
                          AND NOT (tag_id = ANY($3)))
         INSERT INTO client_tags (customer_id, client_id, tag_id, applied_at, applied_by)
         SELECT $1, $2, t, $4, $5 FROM unnest($3::uuid[]) AS t
         ON CONFLICT DO NOTHING",
    )
    .bind(customer)
    .bind(client)
    .bind(tags)
    .bind(at)
    .bind(actor)
    .execute(conn)
    .await?;
    Ok(())
}

/// A snapshot page: clients after `after` in `(customer, id)` order (of `customer` when given).
pub async fn snapshot_page(
    conn: &mut PgConnection,
    customer: Option<CustomerId>,
    after: Option<shared_model::snapshot::Position>,
    limit: i64,
) -> Result<Vec<Client>, ApiError> {
    let rows: Vec<Row> = shared_model::snapshot::keyset(
        SELECT,
        "c.customer_id",
        "c.client_id",
        customer,
        after,
        limit,
    )
    .build_query_as()
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Row::into_client).collect()
}

/// The groups each of `clients` is a member of, in group id order.
pub async fn groups_of(
    conn: &mut PgConnection,
    clients: &[(CustomerId, ClientId)],
) -> Result<std::collections::HashMap<ClientId, Vec<GroupId>>, ApiError> {
    let (customers, ids): (Vec<CustomerId>, Vec<ClientId>) = clients.iter().copied().unzip();
    let rows: Vec<(ClientId, Vec<GroupId>)> = sqlx::query_as(
        "SELECT m.client_id, array_agg(m.group_id ORDER BY m.group_id)
           FROM client_group_members m
           JOIN UNNEST($1::uuid[], $2::uuid[]) AS c(customer_id, client_id)
             ON m.customer_id = c.customer_id AND m.client_id = c.client_id
          GROUP BY m.client_id",
    )
    .bind(customers)
    .bind(ids)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}
