//! What a caller's token lets it search: the rows (row-level security) and, within them, the
//! documents (a filter every search is combined with, so that no request can widen it).
//!
//! | Token | Reaches |
//! |---|---|
//! | PlatformAdminSearchAllCustomers | every document of every tenant |
//! | a tenant's, SearchTenants | the customers whose parent the tenant is |
//! | a tenant's, ViewCustomer | the tenant's own customer document and its own contacts |
//! | a tenant's, ViewClient | the tenant's clients and their contacts |
//! | bound to a client, ViewClient | that client and its contacts |
//!
//! A tenant's token reaches the union of what its permissions reach; a client-bound token
//! reaches its client only, whatever else it holds.

use shared_model::auth::{Caller, Permission};
use shared_model::db::Scope;
use shared_model::error::ApiError;
use shared_model::ids::{ClientId, CustomerId};

use crate::index::Kind;
use crate::index::filter::{Column, Expr};

/// The rows a search runs over, and the condition every hit must meet.
#[derive(Clone, Debug, PartialEq)]
pub struct Reach {
    pub rows: Scope,
    pub filter: Expr,
}

fn kind(k: Kind) -> Expr {
    Expr::Eq(Column::Kind, k.into())
}

/// The customers whose parent is `tenant`.
pub fn sub_tenants(tenant: CustomerId) -> Expr {
    Expr::And(vec![
        kind(Kind::Customer),
        Expr::Eq(Column::ParentId, tenant.into()),
    ])
}

/// The tenant's clients and their contacts.
pub fn clients_of(tenant: CustomerId) -> Expr {
    Expr::And(vec![
        Expr::In(
            Column::Kind,
            vec![Kind::Client.into(), Kind::Contact.into()],
        ),
        Expr::Eq(Column::CustomerId, tenant.into()),
        Expr::Not(Box::new(Expr::IsNull(Column::ClientId))),
    ])
}

/// One client and its contacts.
pub fn client(tenant: CustomerId, client: ClientId) -> Expr {
    Expr::And(vec![
        Expr::Eq(Column::CustomerId, tenant.into()),
        Expr::Eq(Column::ClientId, client.into()),
    ])
}

/// The tenant's own customer document and its own (customer-level) contacts.
pub fn own(tenant: CustomerId) -> Expr {
    Expr::Or(vec![
        Expr::And(vec![
            kind(Kind::Customer),
            Expr::Eq(Column::Id, tenant.into()),
        ]),
        Expr::And(vec![
            kind(Kind::Contact),
            Expr::Eq(Column::CustomerId, tenant.into()),
            Expr::IsNull(Column::ClientId),
        ]),
    ])
}

/// What the caller may search; 403 if nothing.
pub fn of(caller: &Caller) -> Result<Reach, ApiError> {
    if caller.has(Permission::PlatformAdminSearchAllCustomers) {
        return Ok(Reach {
            rows: Scope::PlatformAdmin,
            filter: Expr::True,
        });
    }
    let Some(tenant) = caller.customer_id() else {
        return Err(ApiError::forbidden("the token is not bound to a customer"));
    };
    if let Some(own_client) = caller.client_id() {
        caller.require(Permission::ViewClient)?;
        return Ok(Reach {
            rows: Scope::Tenant(tenant),
            filter: client(tenant, own_client),
        });
    }
    let mut parts = Vec::new();
    if caller.has(Permission::SearchTenants) {
        parts.push(sub_tenants(tenant));
    }
    if caller.has(Permission::ViewCustomer) {
        parts.push(own(tenant));
    }
    if caller.has(Permission::ViewClient) {
        parts.push(clients_of(tenant));
    }
    let filter = match parts.len() {
        0 => {
            return Err(ApiError::forbidden(
                "searching needs SearchTenants, ViewCustomer or ViewClient",
            ));
        }
        1 => parts.remove(0),
        _ => Expr::Or(parts),
    };
    Ok(Reach {
        rows: Scope::Tenant(tenant),
        filter,
    })
}
