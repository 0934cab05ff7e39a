//! Token verification: pinned algorithms, the registered claims, a JWKS cache with bounded
//! refetching, and a short memory of tokens verified lately.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::sync::RwLock;

use crate::config::AuthConfig;
use crate::error::ApiError;

use super::{Caller, Claims, Permission};

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

    pub(super) fn lock_verified(&self) -> std::sync::MutexGuard<'_, VerifiedTokens> {
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
