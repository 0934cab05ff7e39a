//! Keeps each customer's claims document `{customerId, products, roles,
//! sessionExpirationSeconds, version}` current. Version 1 is written by the statement that
//! creates the customer (see `customers::store::insert`); later versions by a reaction to the
//! events that can change it, off the request path. A new version is recorded, published as
//! `customer.claims_changed` and queued for the webhook only when the document differs from the
//! last one.

use std::sync::Arc;

use futures_util::FutureExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared_model::bus::{Handler, Subscription};
use shared_model::db::{self, Scope};
use shared_model::error::ApiError;
use shared_model::events::{CloudEvent, customer, tenant};
use shared_model::ids::CustomerId;
use shared_model::outbox::Cause;
use sqlx::PgConnection;
use sqlx::types::Json;

use crate::roles::store as roles;

/// A role as the auth service needs it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimsRole {
    pub name: String,
    pub permissions: Vec<String>,
}

/// What the auth service puts in the tokens of a customer's users.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimsDocument {
    pub customer_id: CustomerId,
    /// Sorted.
    pub products: Vec<String>,
    /// Sorted by name.
    pub roles: Vec<ClaimsRole>,
    pub session_expiration_seconds: Option<i32>,
    pub version: i64,
}

/// A customer's claims document (version 0, to be set) and its digest, which ignores the
/// version so an unchanged document is recognised.
pub fn document(
    customer: CustomerId,
    mut products: Vec<String>,
    session: Option<i32>,
    mut roles: Vec<ClaimsRole>,
) -> Result<(ClaimsDocument, Vec<u8>), ApiError> {
    products.sort();
    roles.sort_by_key(|r| r.name.to_lowercase());
    let doc = ClaimsDocument {
        customer_id: customer,
        products,
        roles,
        session_expiration_seconds: session,
        version: 0,
    };
    let digest = Sha256::digest(serde_json::to_vec(&doc).map_err(ApiError::internal)?).to_vec();
    Ok((doc, digest))
}

/// A new webhook message id.
pub fn webhook_id() -> String {
    format!("msg_{}", uuid::Uuid::now_v7().simple())
}

/// The consumer that maintains claims documents.
pub fn subscription(deliver: bool) -> Subscription {
    let handler: Handler = Arc::new(move |conn, event| {
        async move {
            refresh(conn, event, deliver)
                .await
                .map_err(ApiError::into_anyhow)
        }
        .boxed()
    });
    Subscription::new("claims-sync").on_each(&[customer::UPDATED, tenant::ROLES_CHANGED], handler)
}

async fn refresh(
    conn: &mut PgConnection,
    event: &CloudEvent,
    deliver: bool,
) -> Result<(), ApiError> {
    let Some(customer) = event.customerid else {
        return Ok(());
    };
    db::set_scope(conn, Scope::Tenant(customer)).await?;
    // The customer row lock orders concurrent refreshes of one customer.
    let row: Option<(Vec<String>, Option<i32>)> = sqlx::query_as(
        "SELECT products, session_expiration_seconds FROM customers WHERE customer_id = $1
            FOR UPDATE",
    )
    .bind(customer)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((products, session)) = row else {
        return Ok(()); // deleted since
    };
    let roles = roles::all(conn, customer)
        .await?
        .into_iter()
        .map(|r| ClaimsRole {
            name: r.name,
            permissions: r.permissions,
        })
        .collect();
    let (mut doc, digest) = document(customer, products, session, roles)?;
    let current: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, digest FROM claims_documents WHERE customer_id = $1")
            .bind(customer)
            .fetch_optional(&mut *conn)
            .await?;
    if current.as_ref().is_some_and(|(_, d)| *d == digest) {
        return Ok(());
    }
    doc.version = current.map_or(1, |(v, _)| v + 1);
    let now = db::now();
    sqlx::query(
        "INSERT INTO claims_documents (customer_id, version, document, digest, changed_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (customer_id) DO UPDATE SET version = $2, document = $3, digest = $4,
             changed_at = $5",
    )
    .bind(customer)
    .bind(doc.version)
    .bind(Json(&doc))
    .bind(&digest)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if deliver {
        sqlx::query(
            "INSERT INTO claims_deliveries (customer_id, version, webhook_id, document, created_at,
                 next_attempt_at)
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(customer)
        .bind(doc.version)
        .bind(webhook_id())
        .bind(Json(&doc))
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Cause::reaction(crate::SOURCE, event)
        .emit(conn, customer::CLAIMS_CHANGED, customer, customer, &doc)
        .await?;
    tracing::info!(customer_id = %customer, version = doc.version, "claims document changed");
    Ok(())
}
