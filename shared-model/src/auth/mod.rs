//! Caller identity: JWT verification, claims, permissions and the axum extractor.
//!
//! Tokens are verified with pinned algorithms (HS256 with a shared secret for local/dev;
//! RS256/ES256 from a JWKS URL in production); `iss`, `aud` (a string, or an array holding our
//! audience), `exp` and `nbf` are checked with a small leeway, and a token issued (`iat`) in the
//! future beyond the leeway is refused (RFC 8725). A token bound to a customer or client cannot
//! carry a service permission ([`Permission::is_service`]). Authorization is by permission,
//! never by role name. This module never logs a token.

use std::time::Duration;

use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::config::{AuthConfig, Secret};
use crate::error::ApiError;
use crate::ids::{ClientId, CustomerId};

mod caller;
mod verifier;

pub use caller::Caller;
pub use verifier::Verifier;

/// Permissions a token can carry. Unknown permission strings in a token are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Permission {
    EditCustomer,
    ViewCustomer,
    EditClient,
    ViewClient,
    ManagePartitions,
    EditRegistrationSettings,
    SearchTenants,
    PlatformAdminEditAllCustomers,
    PlatformAdminViewAllCustomers,
    PlatformAdminSearchAllCustomers,
    ManageOrgStructure,
    ManageGdpr,
    VerifyApiKeys,
    ReadClientSnapshots,
}

impl Permission {
    pub const ALL: &'static [Permission] = &[
        Permission::EditCustomer,
        Permission::ViewCustomer,
        Permission::EditClient,
        Permission::ViewClient,
        Permission::ManagePartitions,
        Permission::EditRegistrationSettings,
        Permission::SearchTenants,
        Permission::PlatformAdminEditAllCustomers,
        Permission::PlatformAdminViewAllCustomers,
        Permission::PlatformAdminSearchAllCustomers,
        Permission::ManageOrgStructure,
        Permission::ManageGdpr,
        Permission::VerifyApiKeys,
        Permission::ReadClientSnapshots,
    ];

    /// Permissions of the platform's own services (key verification by gateways, the internal
    /// client snapshots): only a token bound to no customer and no client may carry them, so no
    /// tenant user's token can, whatever roles a tenant defines.
    pub fn is_service(&self) -> bool {
        matches!(
            self,
            Permission::VerifyApiKeys | Permission::ReadClientSnapshots
        )
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Permission::EditCustomer => "EditCustomer",
            Permission::ViewCustomer => "ViewCustomer",
            Permission::EditClient => "EditClient",
            Permission::ViewClient => "ViewClient",
            Permission::ManagePartitions => "ManagePartitions",
            Permission::EditRegistrationSettings => "EditRegistrationSettings",
            Permission::SearchTenants => "SearchTenants",
            Permission::PlatformAdminEditAllCustomers => "PlatformAdminEditAllCustomers",
            Permission::PlatformAdminViewAllCustomers => "PlatformAdminViewAllCustomers",
            Permission::PlatformAdminSearchAllCustomers => "PlatformAdminSearchAllCustomers",
            Permission::ManageOrgStructure => "ManageOrgStructure",
            Permission::ManageGdpr => "ManageGdpr",
            Permission::VerifyApiKeys => "VerifyApiKeys",
            Permission::ReadClientSnapshots => "ReadClientSnapshots",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.as_str() == s)
    }
}

/// The JWT claims the platform reads.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: Audience,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<CustomerId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientId>,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub platform_admin: bool,
}

/// The `aud` claim: one audience or several (RFC 7519 §4.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl From<String> for Audience {
    fn from(aud: String) -> Self {
        Audience::One(aud)
    }
}

impl From<&str> for Audience {
    fn from(aud: &str) -> Self {
        Audience::One(aud.to_string())
    }
}

/// The bearer token of a request, or 401.
pub fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::not_authorized("a bearer token is required"))?;
    value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::not_authorized("the Authorization header must be 'Bearer <token>'")
        })
}

/// Signs an HS256 token (local development, tests and the load generator).
pub fn sign_hs256(claims: &Claims, secret: &Secret<String>) -> anyhow::Result<String> {
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.expose().as_bytes()),
    )?)
}

/// Claims for a token valid for `ttl` from now.
pub fn claims_for(
    cfg: &AuthConfig,
    sub: &str,
    customer_id: Option<CustomerId>,
    permissions: &[Permission],
    ttl: Duration,
) -> Claims {
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    Claims {
        sub: sub.to_string(),
        iss: cfg.issuer.clone(),
        aud: Audience::One(cfg.audience.clone()),
        exp: now + ttl.as_secs(),
        nbf: None,
        iat: Some(now),
        customer_id,
        client_id: None,
        permissions: permissions.iter().map(|p| p.as_str().to_string()).collect(),
        platform_admin: permissions
            .iter()
            .any(|p| p.as_str().starts_with("PlatformAdmin")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn cfg() -> AuthConfig {
        AuthConfig {
            issuer: "https://auth.test".into(),
            audience: "customer-platform".into(),
            hs256_secret: Some(Secret::new("s3cret-s3cret-s3cret-s3cret-s3cret".into())),
            jwks_url: None,
            leeway_seconds: 30,
        }
    }

    /// Why `v` refuses `claims` signed with `secret` (None: accepted).
    async fn refusal(v: &Verifier, claims: &Claims, secret: &Secret<String>) -> Option<String> {
        match v.verify(&sign_hs256(claims, secret).unwrap()).await {
            Ok(_) => None,
            Err(e) => Some(e.detail.unwrap_or_default()),
        }
    }

    #[tokio::test]
    async fn verifies_hs256_and_checks_the_registered_claims() {
        let cfg = cfg();
        let v = Verifier::from_config(&cfg).unwrap();
        let secret = cfg.hs256_secret.clone().unwrap();
        let ok = claims_for(
            &cfg,
            "u1",
            Some(CustomerId::new()),
            &[Permission::ViewCustomer],
            Duration::from_secs(60),
        );
        let claims = v.verify(&sign_hs256(&ok, &secret).unwrap()).await.unwrap();
        assert_eq!(claims.sub, "u1");
        assert!(Caller::new(claims).has(Permission::ViewCustomer));
        let now = ok.iat.unwrap();
        let with = |change: &dyn Fn(&mut Claims)| {
            let mut c = ok.clone();
            change(&mut c);
            c
        };
        let refused = [
            (with(&|c| c.exp -= 3600), "the token has expired"),
            (
                with(&|c| c.aud = "other".into()),
                "the token is not for this audience",
            ),
            (
                with(&|c| c.aud = Audience::Many(vec!["other".into()])),
                "the token is not for this audience",
            ),
            (
                with(&|c| c.iss = "https://evil".into()),
                "the token's issuer is not trusted",
            ),
            (
                with(&|c| c.nbf = Some(now + 3600)),
                "the token is not valid yet (nbf)",
            ),
            (
                with(&|c| c.iat = Some(now + 3600)),
                "the token is issued in the future",
            ),
            (
                with(&|c| c.permissions.push("VerifyApiKeys".into())),
                "a token bound to a customer or client cannot carry a service permission",
            ),
        ];
        for (claims, why) in refused {
            assert_eq!(refusal(&v, &claims, &secret).await.as_deref(), Some(why));
        }
        let accepted = [
            with(&|c| c.aud = Audience::Many(vec!["other".into(), cfg.audience.clone()])),
            // Within the leeway (30 s).
            with(&|c| c.nbf = Some(now + 10)),
            with(&|c| c.iat = Some(now + 10)),
            with(&|c| {
                c.customer_id = None;
                c.permissions.push("VerifyApiKeys".into());
            }),
        ];
        for claims in accepted {
            assert_eq!(refusal(&v, &claims, &secret).await, None, "{claims:?}");
        }
        let forged = Secret::new("another-secret-another-secret".into());
        assert_eq!(
            refusal(&v, &ok, &forged).await.as_deref(),
            Some("the token's signature is invalid")
        );
        assert!(v.verify("a.b.c").await.is_err());
    }

    #[tokio::test]
    async fn a_verified_token_is_reused_until_it_expires_and_failures_are_not_kept() {
        let mut cfg = cfg();
        cfg.leeway_seconds = 0;
        let v = Verifier::from_config(&cfg).unwrap();
        let secret = cfg.hs256_secret.clone().unwrap();
        let claims = claims_for(
            &cfg,
            "u1",
            None,
            &[Permission::VerifyApiKeys],
            Duration::from_secs(1),
        );
        let token = sign_hs256(&claims, &secret).unwrap();
        let first = v.caller(&token).await.unwrap();
        assert!(first.has(Permission::VerifyApiKeys));
        assert_eq!(v.lock_verified().len(), 1);
        let again = v.caller(&token).await.unwrap();
        assert!(
            Arc::ptr_eq(&first.claims, &again.claims),
            "served from memory"
        );

        // A forged token is verified (and refused) every time, never remembered.
        let forged = sign_hs256(
            &claims,
            &Secret::new("another-secret-another-secret".into()),
        )
        .unwrap();
        assert!(v.caller(&forged).await.is_err());
        assert!(v.caller(&forged).await.is_err());
        assert_eq!(v.lock_verified().len(), 1);

        // Remembered or not, an expired token is refused.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let e = v.caller(&token).await.unwrap_err();
        assert_eq!(e.detail.as_deref(), Some("the token has expired"));
    }

    #[test]
    fn key_mismatch_and_admin_scope() {
        let cfg = cfg();
        let own = CustomerId::new();
        let c = Caller::new(claims_for(
            &cfg,
            "u",
            Some(own),
            &[Permission::ViewCustomer],
            Duration::from_secs(60),
        ));
        let other = CustomerId::new();
        let e = c
            .for_customer(
                other,
                Permission::ViewCustomer,
                Permission::PlatformAdminViewAllCustomers,
            )
            .unwrap_err();
        assert_eq!(e.code, "KEY_MISMATCH");
        assert!(matches!(
            c.for_customer(own, Permission::ViewCustomer, Permission::PlatformAdminViewAllCustomers),
            Ok(crate::db::Scope::Tenant(id)) if id == own
        ));
        let e = c
            .for_customer(
                own,
                Permission::EditCustomer,
                Permission::PlatformAdminEditAllCustomers,
            )
            .unwrap_err();
        assert_eq!(e.code, "FORBIDDEN");
        let admin = Caller::new(claims_for(
            &cfg,
            "a",
            None,
            &[Permission::PlatformAdminViewAllCustomers],
            Duration::from_secs(60),
        ));
        assert!(matches!(
            admin.for_customer(
                other,
                Permission::ViewCustomer,
                Permission::PlatformAdminViewAllCustomers
            ),
            Ok(crate::db::Scope::PlatformAdmin)
        ));
    }

    #[test]
    fn a_client_bound_token_reaches_its_own_client_only() {
        let cfg = cfg();
        let own = CustomerId::new();
        let client = ClientId::new();
        let mut claims = claims_for(
            &cfg,
            "shopper",
            Some(own),
            &[Permission::ViewClient, Permission::ViewCustomer],
            Duration::from_secs(60),
        );
        claims.client_id = Some(client);
        let c = Caller::new(claims);
        let (view, admin) = (
            Permission::ViewClient,
            Permission::PlatformAdminViewAllCustomers,
        );
        let e = c
            .for_customer(own, Permission::ViewCustomer, admin)
            .unwrap_err();
        assert_eq!(e.code, "FORBIDDEN");
        assert!(matches!(
            c.for_client(own, client, view, admin),
            Ok(crate::db::Scope::Tenant(id)) if id == own
        ));
        let e = c.for_client(own, ClientId::new(), view, admin).unwrap_err();
        assert_eq!(e.code, "KEY_MISMATCH");
        let e = c
            .for_client(CustomerId::new(), client, view, admin)
            .unwrap_err();
        assert_eq!(e.code, "KEY_MISMATCH");
    }
}
