//! The HQ rules: at most one HQ per owner (the designation moves), and the HQ made from a
//! business customer's address.
//!
//! - `customer.created` for a business customer with an address → an HQ named after the
//!   customer, at that address (country `US` when the address names none), `derivedFrom:
//!   customer`. A consumer customer, or one without an address, gets none; nor does an owner
//!   that already has an HQ.
//! - `customer.updated` with another address → the derived HQ takes it, while it is still
//!   derived (its own address or kind not changed through the API since).
//!
//! - `client_address.created`, when the customer's `clientHqFromAddress` setting is on (default
//!   off) and the client has no HQ → an HQ for the client at that address (named after the
//!   address's label, or "Headquarters"), `derivedFrom: client`; `client_address.updated` of
//!   that address → the HQ follows it while still derived (a newer address version only).
//!
//! The customer's run in the projection's transaction, after the version guard; the client's
//! compare the address version applied. A redelivered or stale event changes nothing, and the
//! HQ index makes a second HQ impossible in any case.

use std::sync::Arc;

use futures_util::FutureExt;
use shared_model::bus::{Handler, Subscription};
use shared_model::db::{self, Scope};
use shared_model::error::ApiError;
use shared_model::events::client::{self as client_ev, ClientAddress};
use shared_model::events::customer::{Address, Customer};
use shared_model::events::org::{self as ev, Location};
use shared_model::events::{CloudEvent, Updated};
use shared_model::ids::LocationId;
use shared_model::model::{CountryCode, CustomerType, DerivedFrom, LocationKind};
use shared_model::outbox::Cause;
use sqlx::PgConnection;

use super::store;
use crate::owners::{Owner, store as owners};
use crate::settings::store as settings;

/// The country of a derived HQ whose source address names none.
const DEFAULT_COUNTRY: &str = "US";

/// Makes `location` the owner's HQ: the current HQ, if another, becomes a `branch` (and
/// publishes its update). Serialized per owner, so two requests cannot both take it.
pub async fn take_designation(
    conn: &mut PgConnection,
    owner: &Owner,
    location: LocationId,
    cause: &Cause,
) -> Result<(), ApiError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))")
        .bind(owner.id())
        .execute(&mut *conn)
        .await?;
    let Some(before) = store::hq(conn, owner).await? else {
        return Ok(());
    };
    if before.id == location {
        return Ok(());
    }
    let mut l = before.clone();
    l.kind = LocationKind::Branch;
    l.derived_from = None;
    l.version += 1;
    l.updated_at = shared_model::db::now();
    store::save(conn, &l).await?;
    let data = Updated::new(&before, &l).map_err(ApiError::internal)?;
    cause
        .emit(conn, ev::LOCATION_UPDATED, l.id, l.customer_id, &data)
        .await?;
    Ok(())
}

/// The address a derived HQ takes from its source.
fn derived_address(a: &Address) -> Address {
    let mut a = a.clone();
    if a.country.is_none() {
        a.country = CountryCode::parse(DEFAULT_COUNTRY).ok();
    }
    a
}

/// `customer.created`: the HQ of a new business customer with an address.
pub async fn from_new_customer(
    conn: &mut PgConnection,
    event: &CloudEvent,
    c: &Customer,
) -> Result<(), ApiError> {
    let Some(address) = c.address.as_ref() else {
        return Ok(());
    };
    if c.customer_type != CustomerType::Business {
        return Ok(());
    }
    let owner = Owner {
        customer: c.id,
        client: None,
    };
    if store::hq(conn, &owner).await?.is_some() {
        return Ok(());
    }
    let now = shared_model::db::now();
    let l = Location {
        id: LocationId::new(),
        customer_id: c.id,
        client_id: None,
        name: c.name.clone(),
        secondary_name: None,
        kind: LocationKind::Hq,
        code: None,
        address: Some(derived_address(address)),
        phone: None,
        email: None,
        website: None,
        time_zone: None,
        notes: None,
        active: true,
        derived_from: Some(DerivedFrom::Customer),
        version: 1,
        created_at: now,
        updated_at: now,
    };
    store::save(conn, &l).await?;
    Cause::reaction(crate::SOURCE, event)
        .emit(conn, ev::LOCATION_CREATED, l.id, l.customer_id, &l)
        .await?;
    tracing::info!(customer_id = %c.id, location_id = %l.id, "HQ derived from the customer's address");
    Ok(())
}

/// `customer.updated`: the derived HQ follows the customer's address.
pub async fn follow_customer(
    conn: &mut PgConnection,
    event: &CloudEvent,
    c: &Customer,
) -> Result<(), ApiError> {
    let Some(address) = c.address.as_ref().map(derived_address) else {
        return Ok(());
    };
    let owner = Owner {
        customer: c.id,
        client: None,
    };
    let Some(before) = store::hq(conn, &owner).await? else {
        return Ok(());
    };
    if before.derived_from != Some(DerivedFrom::Customer)
        || before.address.as_ref() == Some(&address)
    {
        return Ok(());
    }
    let mut l = before.clone();
    l.address = Some(address);
    l.version += 1;
    l.updated_at = shared_model::db::now();
    store::save(conn, &l).await?;
    let data = Updated::new(&before, &l).map_err(ApiError::internal)?;
    Cause::reaction(crate::SOURCE, event)
        .emit(conn, ev::LOCATION_UPDATED, l.id, l.customer_id, &data)
        .await?;
    Ok(())
}

/// The consumer of client address events that keeps clients' derived HQs.
pub fn client_addresses() -> Subscription {
    let handler: Handler = Arc::new(|conn, event| {
        async move {
            from_client_address(conn, event)
                .await
                .map_err(ApiError::into_anyhow)
        }
        .boxed()
    });
    Subscription::new("client-addresses").on_each(
        &[client_ev::ADDRESS_CREATED, client_ev::ADDRESS_UPDATED],
        handler,
    )
}

async fn from_client_address(conn: &mut PgConnection, event: &CloudEvent) -> Result<(), ApiError> {
    let a: ClientAddress = serde_json::from_value(event.data.clone())
        .map_err(|e| ApiError::internal(format!("a client address event's data: {e}")))?;
    db::set_scope(conn, Scope::Tenant(a.customer_id)).await?;
    let owner = Owner {
        customer: a.customer_id,
        client: Some(a.client_id),
    };
    // A client this service does not know (yet), or a deleted one, gets nothing; one deleted
    // later loses its HQ with the rest of its organisation.
    if owners::status(conn, &owner, true).await.is_err() {
        return Ok(());
    }
    let address = derived_address(&a.postal());
    match store::hq_with_source(conn, &owner).await? {
        None if event.event_type == client_ev::ADDRESS_CREATED.name => {
            if !settings::get(conn, a.customer_id, false)
                .await?
                .client_hq_from_address
            {
                return Ok(());
            }
            let now = shared_model::db::now();
            let l = Location {
                id: LocationId::new(),
                customer_id: a.customer_id,
                client_id: Some(a.client_id),
                name: a.label.clone().unwrap_or_else(|| "Headquarters".into()),
                secondary_name: None,
                kind: LocationKind::Hq,
                code: None,
                address: Some(address),
                phone: None,
                email: None,
                website: None,
                time_zone: None,
                notes: None,
                active: true,
                derived_from: Some(DerivedFrom::Client),
                version: 1,
                created_at: now,
                updated_at: now,
            };
            store::save(conn, &l).await?;
            store::set_source(conn, &l, a.id, a.version).await?;
            Cause::reaction(crate::SOURCE, event)
                .emit(conn, ev::LOCATION_CREATED, l.id, l.customer_id, &l)
                .await?;
        }
        Some((before, Some(source), Some(applied)))
            if event.event_type == client_ev::ADDRESS_UPDATED.name
                && source == a.id
                && a.version > applied
                && before.derived_from == Some(DerivedFrom::Client) =>
        {
            store::set_source(conn, &before, a.id, a.version).await?;
            if before.address.as_ref() == Some(&address) {
                return Ok(());
            }
            let mut l = before.clone();
            l.address = Some(address);
            l.version += 1;
            l.updated_at = shared_model::db::now();
            store::save(conn, &l).await?;
            let data = Updated::new(&before, &l).map_err(ApiError::internal)?;
            Cause::reaction(crate::SOURCE, event)
                .emit(conn, ev::LOCATION_UPDATED, l.id, l.customer_id, &data)
                .await?;
        }
        _ => {}
    }
    Ok(())
}
