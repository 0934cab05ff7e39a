//! Scoped search keys (`/v1/search-keys`): secrets a browser front end presents in
//! `X-Search-Key` to search without a user token. Each key has a kind (what it reaches), an
//! expiry, an optional filter that only narrows, allowed origins and a rate limit.
//!
//! | kind | reaches | created with |
//! |---|---|---|
//! | `allCustomers` | every customer | PlatformAdminSearchAllCustomers |
//! | `businessCustomers` | every business customer | PlatformAdminSearchAllCustomers |
//! | `consumerCustomers` | every consumer customer | PlatformAdminSearchAllCustomers |
//! | `tenantCustomers` | the customers whose parent the key's customer is | SearchTenants |
//! | `clients` | the key's customer's clients and their contacts | ViewClient |
//!
//! The secret (`csk_search_...`, the kit's key format) is shown once; only its keyed hash is
//! kept. A key is looked up on every use, so a revocation holds on every replica as soon as
//! it commits; deleting a customer revokes its keys.

pub mod access;
pub mod bodies;
pub mod routes;
pub mod store;

use serde::{Deserialize, Serialize};
use shared_model::auth::Permission;
use shared_model::db::Scope;
use shared_model::ids::CustomerId;
use shared_model::keys::KeyFormat;
use utoipa::ToSchema;

use crate::index::Kind;
use crate::index::filter::{Column, Expr, Value};
use crate::search::scope::{Reach, clients_of, sub_tenants};

/// The mark and label of a search key: `csk_search_...`.
pub const FORMAT: KeyFormat = KeyFormat::new("csk_");
pub const LABEL: &str = "search";

/// What a key reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum KeyKind {
    AllCustomers,
    BusinessCustomers,
    ConsumerCustomers,
    TenantCustomers,
    Clients,
}

impl KeyKind {
    pub const ALL: [KeyKind; 5] = [
        KeyKind::AllCustomers,
        KeyKind::BusinessCustomers,
        KeyKind::ConsumerCustomers,
        KeyKind::TenantCustomers,
        KeyKind::Clients,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::AllCustomers => "allCustomers",
            KeyKind::BusinessCustomers => "businessCustomers",
            KeyKind::ConsumerCustomers => "consumerCustomers",
            KeyKind::TenantCustomers => "tenantCustomers",
            KeyKind::Clients => "clients",
        }
    }

    pub fn parse(s: &str) -> Option<KeyKind> {
        KeyKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether a key of this kind belongs to one customer (else it is platform-wide).
    pub fn is_tenant(self) -> bool {
        matches!(self, KeyKind::TenantCustomers | KeyKind::Clients)
    }

    /// The permission a tenant's token needs to create, see and revoke keys of this kind
    /// (platform admins: PlatformAdminSearchAllCustomers for every kind).
    pub fn tenant_permission(self) -> Option<Permission> {
        match self {
            KeyKind::TenantCustomers => Some(Permission::SearchTenants),
            KeyKind::Clients => Some(Permission::ViewClient),
            _ => None,
        }
    }

    /// What a key of this kind (of `customer`, for the tenant kinds) reaches.
    pub fn reach(self, customer: Option<CustomerId>) -> Reach {
        let customers = Expr::Eq(Column::Kind, Kind::Customer.into());
        let typed = |t: &str| {
            Expr::And(vec![
                customers.clone(),
                Expr::Eq(Column::Type, Value::Text(t.into())),
            ])
        };
        match (self, customer) {
            (KeyKind::AllCustomers, _) => Reach {
                rows: Scope::PlatformAdmin,
                filter: customers,
            },
            (KeyKind::BusinessCustomers, _) => Reach {
                rows: Scope::PlatformAdmin,
                filter: typed("business"),
            },
            (KeyKind::ConsumerCustomers, _) => Reach {
                rows: Scope::PlatformAdmin,
                filter: typed("consumer"),
            },
            (KeyKind::TenantCustomers, Some(c)) => Reach {
                rows: Scope::Tenant(c),
                filter: sub_tenants(c),
            },
            (KeyKind::Clients, Some(c)) => Reach {
                rows: Scope::Tenant(c),
                filter: clients_of(c),
            },
            // A tenant kind without its customer (the table's CHECK forbids it) reaches nothing.
            (_, None) => Reach {
                rows: Scope::System,
                filter: Expr::False,
            },
        }
    }
}
