//! The authenticated caller of a request and its axum extractor.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::ids::{ClientId, CustomerId};

use super::{Claims, Permission, Verifier, bearer};

/// The authenticated caller of a request. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct Caller {
    pub claims: Arc<Claims>,
    permissions: Arc<[Permission]>,
}

impl Caller {
    pub fn new(claims: Claims) -> Self {
        let permissions = claims
            .permissions
            .iter()
            .filter_map(|p| Permission::parse(p))
            .collect();
        Self {
            claims: Arc::new(claims),
            permissions,
        }
    }

    pub fn sub(&self) -> &str {
        &self.claims.sub
    }

    /// The client a client-bound token is limited to.
    pub fn client_id(&self) -> Option<ClientId> {
        self.claims.client_id
    }

    /// The customer the token is bound to.
    pub fn customer_id(&self) -> Option<CustomerId> {
        self.claims.customer_id
    }

    pub fn has(&self, p: Permission) -> bool {
        self.permissions.contains(&p)
    }

    /// 403 unless the caller holds `p`.
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if self.has(p) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the {} permission is required",
                p.as_str()
            )))
        }
    }

    /// Authorizes access to one customer's tenant-level data (the customer, its collections,
    /// settings, partitions and keys): a platform admin holding `admin` may reach any customer;
    /// anyone else must name their own customer (else 400 KEY_MISMATCH), hold `tenant` and not
    /// be bound to a client (else 403). A token bound to no customer is authenticated but not
    /// authorized for any tenant: 403, in every service.
    pub fn for_customer(
        &self,
        customer: CustomerId,
        tenant: Permission,
        admin: Permission,
    ) -> Result<crate::db::Scope, ApiError> {
        let scope = self.customer_scope(customer, tenant, admin)?;
        if scope != crate::db::Scope::PlatformAdmin && self.claims.client_id.is_some() {
            return Err(ApiError::forbidden(
                "a token bound to a client reaches only its own client",
            ));
        }
        Ok(scope)
    }

    /// Authorizes access to one client and what belongs to it: as [`Caller::for_customer`], but
    /// a token bound to this client is let in too (one bound to another client: 400
    /// KEY_MISMATCH).
    pub fn for_client(
        &self,
        customer: CustomerId,
        client: ClientId,
        tenant: Permission,
        admin: Permission,
    ) -> Result<crate::db::Scope, ApiError> {
        let scope = self.customer_scope(customer, tenant, admin)?;
        match self.claims.client_id {
            Some(own) if scope != crate::db::Scope::PlatformAdmin && own != client => Err(
                ApiError::key_mismatch("the path names another client than the token"),
            ),
            _ => Ok(scope),
        }
    }

    /// Whether the token is bound to a client.
    pub fn is_client_bound(&self) -> bool {
        self.claims.client_id.is_some()
    }

    fn customer_scope(
        &self,
        customer: CustomerId,
        tenant: Permission,
        admin: Permission,
    ) -> Result<crate::db::Scope, ApiError> {
        if self.has(admin) {
            return Ok(crate::db::Scope::PlatformAdmin);
        }
        match self.claims.customer_id {
            Some(own) if own == customer => {
                self.require(tenant)?;
                Ok(crate::db::Scope::Tenant(own))
            }
            Some(_) => Err(ApiError::key_mismatch(
                "the path names another customer than the token",
            )),
            None => Err(ApiError::forbidden("the token is not bound to a customer")),
        }
    }
}

impl<S> FromRequestParts<S> for Caller
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(c) = parts.extensions.get::<Caller>() {
            return Ok(c.clone());
        }
        let token = bearer(parts)?;
        let caller = Verifier::from_ref(state).caller(token).await?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}
