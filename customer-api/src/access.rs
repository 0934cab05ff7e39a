//! Who may do what to a customer's clients: the scope of a caller's transaction for one
//! customer's clients or one client, by the permission the operation needs (client-bound tokens
//! reach only their own client).

use shared_model::auth::{Caller, Permission};
use shared_model::db::Scope;
use shared_model::error::ApiError;
use shared_model::ids::{ClientId, CustomerId};

/// Authorizes a caller for one customer's clients.
pub fn scope(caller: &Caller, customer: CustomerId, edit: bool) -> Result<Scope, ApiError> {
    if edit {
        caller.for_customer(
            customer,
            Permission::EditClient,
            Permission::PlatformAdminEditAllCustomers,
        )
    } else {
        caller.for_customer(
            customer,
            Permission::ViewClient,
            Permission::PlatformAdminViewAllCustomers,
        )
    }
}

/// Authorizes a caller for one client (also applying the client-bound token rule).
pub fn client_scope(
    caller: &Caller,
    customer: CustomerId,
    client: ClientId,
    edit: bool,
) -> Result<Scope, ApiError> {
    if edit {
        caller.for_client(
            customer,
            client,
            Permission::EditClient,
            Permission::PlatformAdminEditAllCustomers,
        )
    } else {
        caller.for_client(
            customer,
            client,
            Permission::ViewClient,
            Permission::PlatformAdminViewAllCustomers,
        )
    }
}

/// Refuses a client-bound token (an operation on the customer's whole client list).
pub fn not_client_bound(caller: &Caller) -> Result<(), ApiError> {
    if caller.client_id().is_some() {
        return Err(ApiError::forbidden(
            "a token bound to a client cannot do this",
        ));
    }
    Ok(())
}
