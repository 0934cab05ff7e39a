//! Caller identity: JWT verification, claims, permissions and the axum extractor.
//!
//! Tokens are verified with pinned algorithms (HS256 with a shared secret for local/dev;
//! RS256/ES256 from a JWKS URL in production); `iss`, `aud` (a string, or an array holding our
//! audience), `exp` and `nbf` are checked with a small leeway, and a token issued (`iat`) in the
//! future beyond the leeway is refused (RFC 8725). A token bound to a customer or client cannot
//! carry a service permission ([`Permission::is_service`]). Authorization is by permission,
//! never by role name. This module never logs a token.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::config::{AuthConfig, Secret};
use crate::error::ApiError;
use crate::ids::{ClientId, CustomerId};

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

/// Where a JWKS came from and when, with its keys by `kid`.
struct JwksCache {
    keys: HashMap<String, (Algorithm, DecodingKey)>,
    fetched_at: Option<Instant>,
}

enum KeySource {
    Hs256(DecodingKey),
    Jwks {
        url: String,
        http: reqwest::Client,
        cache: RwLock<JwksCache>,
    },
}

/// Verifies bearer tokens. Cheap to clone (shared).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<VerifierInner>,
}

struct VerifierInner {
    source: KeySource,
    /// Least time between two JWKS fetches caused by unknown key ids.
    min_refetch: Duration,
    issuer: String,
    audience: String,
    leeway: u64,
    /// Callers of tokens verified lately, by the token's exact text (see [`Verifier::caller`]).
    /// (A fast seeded hasher: a request hashes its whole token.)
    verified: std::sync::Mutex<VerifiedTokens>,
}

type VerifiedTokens = HashMap<Box<str>, (Caller, Instant), foldhash::fast::RandomState>;

/// How long a verified token's caller is reused without verifying its signature again. It
/// bounds how long a key removed from the JWKS keeps working for tokens already seen.
const VERIFIED_TTL: Duration = Duration::from_secs(60);
/// Tokens remembered at most (then the memory starts over).
const VERIFIED_MAX: usize = 10_000;

const JWKS_TTL: Duration = Duration::from_secs(600);
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(10);

impl Verifier {
    pub fn from_config(cfg: &AuthConfig) -> anyhow::Result<Self> {
        let source = match (&cfg.hs256_secret, &cfg.jwks_url) {
            (Some(secret), None) => {
                KeySource::Hs256(DecodingKey::from_secret(secret.expose().as_bytes()))
            }
            (None, Some(url)) => KeySource::Jwks {
                url: url.clone(),
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()?,
                cache: RwLock::new(JwksCache {
                    keys: HashMap::new(),
                    fetched_at: None,
                }),
            },
            _ => anyhow::bail!("auth: set exactly one of auth.hs256_secret and auth.jwks_url"),
        };
        Ok(Self {
            inner: Arc::new(VerifierInner {
                source,
                min_refetch: JWKS_MIN_REFETCH,
                issuer: cfg.issuer.clone(),
                audience: cfg.audience.clone(),
                leeway: cfg.leeway_seconds.min(60),
                verified: Default::default(),
            }),
        })
    }

    /// As [`Verifier::from_config`], with another least interval between JWKS refetches.
    pub fn with_min_refetch(cfg: &AuthConfig, min_refetch: Duration) -> anyhow::Result<Self> {
        let v = Self::from_config(cfg)?;
        let inner = Arc::try_unwrap(v.inner).map_err(|_| anyhow::anyhow!("verifier is shared"))?;
        Ok(Self {
            inner: Arc::new(VerifierInner {
                min_refetch,
                ..inner
            }),
        })
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.inner.leeway;
        v.set_issuer(&[&self.inner.issuer]);
        v.set_audience(&[&self.inner.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.validate_nbf = true;
        v
    }

    /// The checks beyond the signature and the registered claims' validation: `iat` not in
    /// the future, service permissions only on tokens bound to no customer or client.
    fn check_claims(&self, claims: &Claims) -> Result<(), ApiError> {
        let now = unix_now();
        if claims
            .iat
            .is_some_and(|iat| iat > now.saturating_add(self.inner.leeway))
        {
            return Err(ApiError::not_authorized(
                "the token is issued in the future",
            ));
        }
        let bound = claims.customer_id.is_some() || claims.client_id.is_some();
        if bound
            && claims
                .permissions
                .iter()
                .filter_map(|p| Permission::parse(p))
                .any(|p| p.is_service())
        {
            return Err(ApiError::not_authorized(
                "a token bound to a customer or client cannot carry a service permission",
            ));
        }
        Ok(())
    }

    /// The caller a bearer token speaks for. A token whose signature and claims verified in the
    /// last [`VERIFIED_TTL`] is not verified again: the same bytes verify the same way, so
    /// only its expiry is checked anew (with the configured leeway). Failures are not
    /// remembered.
    pub async fn caller(&self, token: &str) -> Result<Caller, ApiError> {
        let now = unix_now();
        {
            let verified = self.lock_verified();
            if let Some((caller, at)) = verified.get(token)
                && at.elapsed() < VERIFIED_TTL
            {
                if caller.claims.exp.saturating_add(self.inner.leeway) < now {
                    return Err(ApiError::not_authorized("the token has expired"));
                }
                return Ok(caller.clone());
            }
        }
        let caller = Caller::new(self.verify(token).await?);
        let mut verified = self.lock_verified();
        if verified.len() >= VERIFIED_MAX {
            verified.retain(|_, (_, at)| at.elapsed() < VERIFIED_TTL);
            if verified.len() >= VERIFIED_MAX {
                verified.clear();
            }
        }
        verified.insert(token.into(), (caller.clone(), Instant::now()));
        Ok(caller)
    }

    fn lock_verified(&self) -> std::sync::MutexGuard<'_, VerifiedTokens> {
        crate::lock(&self.inner.verified)
    }

    /// Verifies a compact JWS and returns its claims; any failure is a 401 with a reason that
    /// names the check that failed, never the token.
    pub async fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| ApiError::not_authorized("the bearer token is malformed"))?;
        let (alg, key) = match &self.inner.source {
            KeySource::Hs256(key) => (Algorithm::HS256, key.clone()),
            KeySource::Jwks { .. } => self.jwks_key(header.kid.as_deref(), header.alg).await?,
        };
        if header.alg != alg {
            return Err(ApiError::not_authorized(
                "the token's algorithm is not accepted",
            ));
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &self.validation(alg))
            .map(|d| d.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                let why = match e.kind() {
                    K::ExpiredSignature => "the token has expired",
                    K::ImmatureSignature => "the token is not valid yet (nbf)",
                    K::InvalidAudience => "the token is not for this audience",
                    K::InvalidIssuer => "the token's issuer is not trusted",
                    K::InvalidSignature => "the token's signature is invalid",
                    K::InvalidAlgorithm => "the token's algorithm is not accepted",
                    K::MissingRequiredClaim(_) => "the token lacks a required claim",
                    _ => "the token is invalid",
                };
                ApiError::not_authorized(why)
            })?;
        self.check_claims(&claims)?;
        Ok(claims)
    }

    async fn jwks_key(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<(Algorithm, DecodingKey), ApiError> {
        let KeySource::Jwks { url, http, cache } = &self.inner.source else {
            unreachable!("jwks_key is only called for a JWKS source")
        };
        if !matches!(alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(ApiError::not_authorized(
                "the token's algorithm is not accepted",
            ));
        }
        let kid = kid.ok_or_else(|| ApiError::not_authorized("the token has no key id"))?;
        {
            let c = cache.read().await;
            let fresh = c.fetched_at.is_some_and(|t| t.elapsed() < JWKS_TTL);
            if let (true, Some(k)) = (fresh, c.keys.get(kid)) {
                return Ok(k.clone());
            }
        }
        // Unknown kid or stale set: refetch once (at most every JWKS_MIN_REFETCH).
        let mut c = cache.write().await;
        let may_refetch = c
            .fetched_at
            .is_none_or(|t| t.elapsed() >= self.inner.min_refetch);
        if may_refetch {
            match fetch_jwks(http, url).await {
                Ok(keys) => {
                    c.keys = keys;
                    c.fetched_at = Some(Instant::now());
                }
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "fetching the JWKS failed");
                    if c.keys.is_empty() {
                        return Err(ApiError::unavailable("the token keys cannot be fetched"));
                    }
                }
            }
        }
        c.keys
            .get(kid)
            .cloned()
            .ok_or_else(|| ApiError::not_authorized("the token's key id is unknown"))
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn fetch_jwks(
    http: &reqwest::Client,
    url: &str,
) -> anyhow::Result<HashMap<String, (Algorithm, DecodingKey)>> {
    let set: JwkSet = http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let (Some(kid), Some(alg)) = (jwk.common.key_id.clone(), jwk.common.key_algorithm) else {
            continue;
        };
        let alg = match alg.to_string().as_str() {
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            _ => continue,
        };
        if let Ok(key) = DecodingKey::from_jwk(jwk) {
            keys.insert(kid, (alg, key));
        }
    }
    Ok(keys)
}

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
