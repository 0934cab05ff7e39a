//! Owners: every location, department and contact belongs to a customer or to one of its
//! clients, with the same operations at both levels (`/v1/customers/{customerId}/...` and
//! `/v1/customers/{customerId}/clients/{clientId}/...`, see [`CLIENT_LEVEL`]).
//!
//! org-structure knows owners from customer-api's events ([`reactions`]: the `known_customers`
//! and `known_clients` projections). Nothing is created for an owner it does not know or that
//! is deleted (404), nor for a deactivated customer (409 `CUSTOMER_DEACTIVATED`) or a disabled
//! client (409 `CLIENT_DISABLED`).
//!
//! Reading needs ViewCustomer at the customer level and ViewClient at the client level;
//! changing needs ManageOrgStructure and EditClient; platform admins need
//! PlatformAdminViewAllCustomers and PlatformAdminEditAllCustomers. A token bound to a client
//! reaches only that client's level.

pub mod reactions;
pub mod store;

use serde::Deserialize;
use shared_model::auth::{Caller, Permission};
use shared_model::db::Scope;
use shared_model::error::ApiError;
use shared_model::http::nested::Level;
use shared_model::ids::{ClientId, CustomerId};
use sqlx::PgConnection;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};

/// The client level under the customer level (the kit's [`shared_model::http::nested`]).
pub const CLIENT_LEVEL: Level = Level {
    prefix: "/v1/customers/{customerId}",
    segment: "/clients/{clientId}",
    parameter: client_parameter,
    id_suffix: "_of_client",
};

fn client_parameter() -> Parameter {
    ParameterBuilder::new()
        .name("clientId")
        .parameter_in(ParameterIn::Path)
        .required(utoipa::openapi::Required::True)
        .description(Some(
            "The client, at the client level: needs ViewClient to read and EditClient to change",
        ))
        .schema(Some(<ClientId as utoipa::PartialSchema>::schema()))
        .build()
}

/// Whom an entity belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub customer: CustomerId,
    /// `None` for the customer's own entities.
    pub client: Option<ClientId>,
}

/// The owner's path parameters, read by name at either level.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerPath {
    pub customer_id: CustomerId,
    #[serde(default)]
    pub client_id: Option<ClientId>,
}

impl OwnerPath {
    pub fn owner(&self) -> Owner {
        Owner {
            customer: self.customer_id,
            client: self.client_id,
        }
    }
}

/// The path parameters of one of an owner's entities, at either level: `{customerId}`, maybe
/// `{clientId}`, and the entity's own id under its name (`{locationId}`, `{departmentId}` or
/// `{contactId}`; a path names one of them).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityPath<Id> {
    customer_id: CustomerId,
    #[serde(default)]
    client_id: Option<ClientId>,
    #[serde(rename = "locationId", alias = "departmentId", alias = "contactId")]
    id: Id,
}

impl<Id: Copy> EntityPath<Id> {
    pub fn owner(&self) -> Owner {
        Owner {
            customer: self.customer_id,
            client: self.client_id,
        }
    }

    pub fn id(&self) -> Id {
        self.id
    }
}

impl Owner {
    /// The owner's id as entities store it (`owner_id`): the client's, or the customer's.
    pub fn id(&self) -> uuid::Uuid {
        self.client.map_or(self.customer.as_uuid(), |c| c.as_uuid())
    }

    /// The owner's API path, before the resource's own segment.
    pub fn path(&self) -> String {
        match self.client {
            None => format!("/v1/customers/{}", self.customer),
            Some(k) => format!("/v1/customers/{}/clients/{k}", self.customer),
        }
    }

    /// The database scope of a caller reading this owner's entities (401/403/400 otherwise).
    pub fn read_scope(&self, caller: &Caller) -> Result<Scope, ApiError> {
        let admin = Permission::PlatformAdminViewAllCustomers;
        match self.client {
            None => caller.for_customer(self.customer, Permission::ViewCustomer, admin),
            Some(k) => caller.for_client(self.customer, k, Permission::ViewClient, admin),
        }
    }

    /// The database scope of a caller changing this owner's entities.
    pub fn edit_scope(&self, caller: &Caller) -> Result<Scope, ApiError> {
        let admin = Permission::PlatformAdminEditAllCustomers;
        match self.client {
            None => caller.for_customer(self.customer, Permission::ManageOrgStructure, admin),
            Some(k) => caller.for_client(self.customer, k, Permission::EditClient, admin),
        }
    }

    /// The owner is known and not deleted (404 otherwise): lists of an unknown owner are 404,
    /// not an empty page.
    pub async fn ensure_known(&self, conn: &mut PgConnection) -> Result<(), ApiError> {
        store::status(conn, self, false).await?;
        Ok(())
    }

    /// The owner can take changes: known, not deleted (404), the customer active and the
    /// client not disabled (409). Holds a share lock on the owner's rows until the end of the
    /// transaction, so a deletion cascade waits for the change (and then removes it).
    pub async fn ensure_writable(&self, conn: &mut PgConnection) -> Result<(), ApiError> {
        let (customer, client) = store::status(conn, self, true).await?;
        if customer != store::ACTIVE {
            return Err(ApiError::conflict(
                "CUSTOMER_DEACTIVATED",
                "the customer is deactivated: its organisation cannot change",
            ));
        }
        if client.is_some_and(|c| c != store::ACTIVE) {
            return Err(ApiError::conflict(
                "CLIENT_DISABLED",
                "the client is disabled: its organisation cannot change",
            ));
        }
        Ok(())
    }
}
