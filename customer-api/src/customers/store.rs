//! SQL for customers. Functions take the caller's transaction, whose row-level security scope
//! was set by `db::begin`; tenant callers additionally filter explicitly.

use shared_model::error::{ApiError, ResultExt};
use shared_model::events::customer::{self as ev, Address, BusinessProfile, Customer, LogoReceipt};
use shared_model::ids::{ClientId, CustomerId};
use shared_model::model::{CustomerStatus, CustomerType, Email, Locale, Phone, WebUrl};
use shared_model::outbox::{self, Cause};
use shared_model::snapshot;

use crate::claims::reactions as claims;
use crate::common::escape_like;
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;

#[derive(sqlx::FromRow)]
struct Row {
    customer_id: CustomerId,
    name: String,
    customer_type: CustomerType,
    email: Option<String>,
    phone: Option<String>,
    website: Option<String>,
    address: Option<Json<Address>>,
    locale: Option<String>,
    business_profile: Option<Json<BusinessProfile>>,
    session_expiration_seconds: Option<i32>,
    bootstrap_tenant_key: String,
    products: Vec<String>,
    status: CustomerStatus,
    parent_customer_id: Option<CustomerId>,
    parent_client_id: Option<ClientId>,
    deactivated_at: Option<OffsetDateTime>,
    window_ends_at: Option<OffsetDateTime>,
    logo: Option<Json<LogoReceipt>>,
    version: i64,
    created_at: OffsetDateTime,
    created_by: String,
    updated_at: OffsetDateTime,
    updated_by: String,
}

impl Row {
    fn into_customer(self) -> Customer {
        Customer {
            id: self.customer_id,
            name: self.name,
            customer_type: self.customer_type,
            email: self.email.map(Email::from_stored),
            phone: self.phone.map(Phone::from_stored),
            website: self.website.map(WebUrl::from_stored),
            address: self.address.map(|a| a.0),
            locale: self.locale.map(Locale::from_stored),
            business_profile: self.business_profile.map(|b| b.0),
            session_expiration_seconds: self.session_expiration_seconds,
            bootstrap_tenant_key: self.bootstrap_tenant_key,
            products: self.products,
            status: self.status,
            parent_customer_id: self.parent_customer_id,
            parent_client_id: self.parent_client_id,
            deactivated_at: self.deactivated_at,
            window_ends_at: self.window_ends_at,
            logo: self.logo.map(|l| l.0),
            version: self.version,
            created_at: self.created_at,
            created_by: self.created_by,
            updated_at: self.updated_at,
            updated_by: self.updated_by,
        }
    }
}

macro_rules! columns {
    () => {
        "customer_id, name, customer_type, email, phone, website, address, locale, \
         business_profile, session_expiration_seconds, bootstrap_tenant_key, products, status, \
         parent_customer_id, parent_client_id, deactivated_at, window_ends_at, logo, \
         version, created_at, created_by, updated_at, updated_by"
    };
}

const COLUMNS: &str = columns!();

/// Maps the customers' unique constraints to 409.
fn conflicts<T>(r: Result<T, sqlx::Error>) -> Result<(), ApiError> {
    r.on_constraint("customers_bootstrap_tenant_key_key", || {
        ApiError::conflict(
            "CONFLICT",
            "bootstrapTenantKey is already used by another customer",
        )
    })
    .on_constraint("customers_external_id_key", || {
        ApiError::conflict(
            "CONFLICT",
            "businessProfile.externalId is already used by another customer",
        )
    })
    .map(|_| ())
}

/// The customer, its default roles, version 1 of its claims document (and a webhook delivery
/// of it when `$25`), and its outbox rows (`customer.created`, `customer.claims_changed`),
/// waking the relay when `$32`: one statement.
const INSERT_SQL: &str = "WITH customer_row AS (
        INSERT INTO customers (customer_id, name, customer_type, email, phone, website, address,
            locale, business_profile, external_id, session_expiration_seconds,
            bootstrap_tenant_key, products, status, parent_customer_id, parent_client_id,
            version, created_at, created_by, updated_at, updated_by)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                $18, $19, $20, $21)
        RETURNING 1),
    role_rows AS (
        INSERT INTO roles (customer_id, role_id, name, description, permissions, is_default,
            created_at, updated_at)
        SELECT $1, r.role_id, r.name, r.description, r.permissions, true, $18, $18
          FROM jsonb_to_recordset($22)
               AS r (role_id uuid, name text, description text, permissions text[])
         WHERE EXISTS (SELECT 1 FROM customer_row)),
    claims_row AS (
        INSERT INTO claims_documents (customer_id, version, document, digest, changed_at)
        SELECT $1, 1, $23, $24, $18 WHERE EXISTS (SELECT 1 FROM customer_row)),
    delivery_row AS (
        INSERT INTO claims_deliveries (customer_id, version, webhook_id, document, created_at,
            next_attempt_at)
        SELECT $1, 1, $26, $23, $18, $18 WHERE $25 AND EXISTS (SELECT 1 FROM customer_row)),
    outbox_row AS (
        INSERT INTO outbox (event_id, customer_id, routing_key, payload, traceparent)
        SELECT * FROM UNNEST($27::uuid[], $28::uuid[], $29::text[], $30::bytea[], $31::text[])
        RETURNING 1)
    SELECT pg_notify('outbox', '') FROM outbox_row WHERE $32 LIMIT 1";

/// What `INSERT_SQL` writes besides the customer's own columns.
struct NewCustomer<'a> {
    c: &'a Customer,
    roles: serde_json::Value,
    doc: claims::ClaimsDocument,
    digest: Vec<u8>,
    deliver_claims: bool,
    webhook_id: String,
    events: outbox::Rows,
    wake: bool,
}

impl<'a> NewCustomer<'a> {
    fn new(c: &'a Customer, cause: &Cause, deliver_claims: bool) -> Result<Self, ApiError> {
        let roles = crate::roles::routes::default_roles(c.id, c.created_at);
        let (mut doc, digest) = claims::document(
            c.id,
            c.products.clone(),
            c.session_expiration_seconds,
            roles
                .iter()
                .map(|r| claims::ClaimsRole {
                    name: r.name.clone(),
                    permissions: r.permissions.clone(),
                })
                .collect(),
        )?;
        doc.version = 1;
        let events = [
            cause.event(ev::CREATED, c.id, c.id, c)?,
            cause.event(ev::CLAIMS_CHANGED, c.id, c.id, &doc)?,
        ];
        let roles = roles
            .into_iter()
            .map(|r| {
                serde_json::json!({
                    "role_id": r.id, "name": r.name, "description": r.description,
                    "permissions": r.permissions,
                })
            })
            .collect();
        Ok(NewCustomer {
            c,
            roles,
            doc,
            digest,
            deliver_claims,
            webhook_id: claims::webhook_id(),
            events: outbox::Rows::of(&events)?,
            wake: outbox::wake_relay(),
        })
    }

    fn external_id(&self) -> Option<&str> {
        self.c
            .business_profile
            .as_ref()
            .and_then(|b| b.external_id.as_deref())
    }
}

/// Inserts `c`, its default roles, version 1 of its claims document (with a webhook delivery
/// when `deliver_claims`), and its `customer.created` and `customer.claims_changed` events in
/// the caller's transaction: one statement, so one round trip.
#[tracing::instrument(skip_all, err(Display))]
pub async fn insert(
    conn: &mut PgConnection,
    c: &Customer,
    cause: &Cause,
    deliver_claims: bool,
) -> Result<(), ApiError> {
    let n = NewCustomer::new(c, cause, deliver_claims)?;
    // In the order of INSERT_SQL's parameters.
    let q = sqlx::query(INSERT_SQL)
        .bind(c.id)
        .bind(&c.name)
        .bind(c.customer_type)
        .bind(&c.email)
        .bind(&c.phone)
        .bind(&c.website)
        .bind(c.address.as_ref().map(Json))
        .bind(&c.locale)
        .bind(c.business_profile.as_ref().map(Json))
        .bind(n.external_id())
        .bind(c.session_expiration_seconds)
        .bind(&c.bootstrap_tenant_key)
        .bind(&c.products)
        .bind(c.status)
        .bind(c.parent_customer_id)
        .bind(c.parent_client_id)
        .bind(c.version)
        .bind(c.created_at)
        .bind(&c.created_by)
        .bind(c.updated_at)
        .bind(&c.updated_by)
        .bind(Json(&n.roles))
        .bind(Json(&n.doc))
        .bind(&n.digest)
        .bind(n.deliver_claims)
        .bind(&n.webhook_id);
    let q = n.events.bind(q);
    conflicts(q.bind(n.wake).execute(conn).await)
}

/// Writes every mutable field of `c`; the caller has bumped `version`.
#[tracing::instrument(skip_all, err(Display))]
pub async fn update(conn: &mut PgConnection, c: &Customer) -> Result<(), ApiError> {
    let r = sqlx::query(
        "UPDATE customers SET name = $2, email = $3, phone = $4, website = $5, address = $6,
             locale = $7, business_profile = $8, external_id = $9,
             session_expiration_seconds = $10, products = $11, status = $12, version = $13,
             updated_at = $14, updated_by = $15, parent_customer_id = $16,
             parent_client_id = $17, deactivated_at = $18, window_ends_at = $19, logo = $20
          WHERE customer_id = $1",
    )
    .bind(c.id)
    .bind(&c.name)
    .bind(&c.email)
    .bind(&c.phone)
    .bind(&c.website)
    .bind(c.address.as_ref().map(Json))
    .bind(&c.locale)
    .bind(c.business_profile.as_ref().map(Json))
    .bind(
        c.business_profile
            .as_ref()
            .and_then(|b| b.external_id.as_ref()),
    )
    .bind(c.session_expiration_seconds)
    .bind(&c.products)
    .bind(c.status)
    .bind(c.version)
    .bind(c.updated_at)
    .bind(&c.updated_by)
    .bind(c.parent_customer_id)
    .bind(c.parent_client_id)
    .bind(c.deactivated_at)
    .bind(c.window_ends_at)
    .bind(c.logo.as_ref().map(Json))
    .execute(conn)
    .await;
    conflicts(r)
}

/// One customer, optionally locked for update.
#[tracing::instrument(skip_all, err(Display))]
pub async fn find(
    conn: &mut PgConnection,
    id: CustomerId,
    lock: bool,
) -> Result<Option<Customer>, ApiError> {
    let sql = if lock {
        concat!(
            "SELECT ",
            columns!(),
            " FROM customers WHERE customer_id = $1 FOR UPDATE"
        )
    } else {
        concat!(
            "SELECT ",
            columns!(),
            " FROM customers WHERE customer_id = $1"
        )
    };
    Ok(sqlx::query_as::<_, Row>(sql)
        .bind(id)
        .fetch_optional(conn)
        .await?
        .map(Row::into_customer))
}

#[tracing::instrument(skip_all, err(Display))]
pub async fn delete(conn: &mut PgConnection, id: CustomerId) -> Result<bool, ApiError> {
    Ok(sqlx::query("DELETE FROM customers WHERE customer_id = $1")
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected()
        == 1)
}

/// Filters of the customer listing.
#[derive(Default)]
pub struct Filter {
    /// Restricts to one customer (tenant callers).
    pub only: Option<CustomerId>,
    pub customer_type: Option<CustomerType>,
    pub status: Option<CustomerStatus>,
    pub text: Option<String>,
    pub updated_since: Option<OffsetDateTime>,
    /// Position after which to continue (updatedAt, id), descending.
    pub after: Option<(OffsetDateTime, CustomerId)>,
}

/// Customers, most recently updated first; fetches `limit + 1` to tell whether more follow.
#[tracing::instrument(skip_all, err(Display))]
pub async fn list(
    conn: &mut PgConnection,
    f: &Filter,
    limit: i64,
) -> Result<Vec<Customer>, ApiError> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new("SELECT ");
    q.push(COLUMNS).push(" FROM customers WHERE true");
    if let Some(id) = f.only {
        q.push(" AND customer_id = ").push_bind(id);
    }
    if let Some(t) = f.customer_type {
        q.push(" AND customer_type = ").push_bind(t);
    }
    if let Some(s) = f.status {
        q.push(" AND status = ").push_bind(s);
    }
    if let Some(text) = &f.text {
        let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
        q.push(
            " AND lower(name || ' ' || coalesce(email, '') || ' ' || coalesce(website, '')) LIKE ",
        )
        .push_bind(pattern);
    }
    if let Some(since) = f.updated_since {
        q.push(" AND updated_at >= ").push_bind(since);
    }
    if let Some((at, id)) = f.after {
        q.push(" AND (updated_at, customer_id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY updated_at DESC, customer_id DESC LIMIT ")
        .push_bind(limit + 1);
    Ok(q.build_query_as::<Row>()
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(Row::into_customer)
        .collect())
}

/// A snapshot page: customers after `after` in id order (of `only` when given).
pub async fn snapshot_page(
    conn: &mut PgConnection,
    only: Option<CustomerId>,
    after: Option<snapshot::Position>,
    limit: i64,
) -> Result<Vec<Customer>, ApiError> {
    let select = concat!("SELECT ", columns!(), " FROM customers");
    let rows: Vec<Row> = snapshot::keyset(select, "customer_id", "customer_id", only, after, limit)
        .build_query_as()
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(Row::into_customer).collect())
}
