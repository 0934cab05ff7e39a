//! Key verification with a short-lived in-process cache.
//!
//! A key is first checked for shape and checksum (no database work for malformed keys), then
//! looked up by its keyed hash. Lookups — found or not — are cached per replica for
//! `cache_ttl_ms` (at most 1 s), so a revocation or an expiry reaches every replica within that
//! time without any cross-replica messaging; expiry times themselves are compared on every
//! verification. `lastUsedAt` is collected in memory and written in one batch per
//! `last_used_flush_ms`, never on the verification's path.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use shared_model::db::{self, Scope};
use shared_model::error::ApiError;
use shared_model::ids::{ApiKeyId, CustomerId, PartitionId};
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::secret;

/// What a valid key grants.
#[derive(Clone, Debug, PartialEq)]
pub struct Grant {
    pub key_id: ApiKeyId,
    pub customer_id: CustomerId,
    pub partition_id: PartitionId,
    pub environment: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<OffsetDateTime>,
}

/// A looked-up key with what decides its validity.
#[derive(Clone, Debug, sqlx::FromRow)]
struct Record {
    key_id: ApiKeyId,
    customer_id: CustomerId,
    partition_id: PartitionId,
    environment: String,
    scopes: Vec<String>,
    expires_at: Option<OffsetDateTime>,
    revoked: bool,
    usable: bool,
}

const MAX_CACHED: usize = 200_000;

/// Lookups by key hash (found or not) and when they were made.
type Cache = HashMap<Vec<u8>, (Option<Record>, Instant)>;

pub struct KeyVerifier {
    pool: PgPool,
    pepper: Vec<u8>,
    ttl: Duration,
    cache: Mutex<Cache>,
    used: Mutex<HashSet<(CustomerId, ApiKeyId)>>,
}

impl KeyVerifier {
    pub fn new(pool: PgPool, pepper: Vec<u8>, ttl: Duration) -> Self {
        Self {
            pool,
            pepper,
            ttl,
            cache: Mutex::default(),
            used: Mutex::default(),
        }
    }

    /// The stored hash of a key.
    pub fn hash(&self, key: &str) -> Vec<u8> {
        secret::hash(&self.pepper, key)
    }

    /// What `key` grants, or `None` for any key that is malformed, unknown, revoked, expired,
    /// of a disabled partition or of a deactivated customer — all alike.
    pub async fn verify(&self, key: &str) -> Result<Option<Grant>, ApiError> {
        if secret::public_prefix(key).is_none() {
            return Ok(None);
        }
        let hash = self.hash(key);
        let cached = {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache
                .get(&hash)
                .filter(|(_, at)| at.elapsed() < self.ttl)
                .map(|(r, _)| r.clone())
        };
        let record = match cached {
            Some(r) => r,
            None => {
                let r = self.lookup(&hash).await?;
                let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() >= MAX_CACHED {
                    let ttl = self.ttl;
                    cache.retain(|_, (_, at)| at.elapsed() < ttl);
                    if cache.len() >= MAX_CACHED {
                        cache.clear();
                    }
                }
                cache.insert(hash, (r.clone(), Instant::now()));
                r
            }
        };
        let Some(r) = record else {
            return Ok(None);
        };
        let now = OffsetDateTime::now_utc();
        if r.revoked || !r.usable || r.expires_at.is_some_and(|e| e <= now) {
            return Ok(None);
        }
        self.used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((r.customer_id, r.key_id));
        Ok(Some(Grant {
            key_id: r.key_id,
            customer_id: r.customer_id,
            partition_id: r.partition_id,
            environment: r.environment,
            scopes: r.scopes,
            expires_at: r.expires_at,
        }))
    }

    async fn lookup(&self, hash: &[u8]) -> Result<Option<Record>, ApiError> {
        // The caller holds a key, not a tenant: the lookup is by the key's hash alone.
        let mut tx = db::begin(&self.pool, Scope::System).await?;
        let r = sqlx::query_as::<_, Record>(
            "SELECT k.key_id, k.customer_id, k.partition_id, k.environment, k.scopes,
                    k.expires_at, k.revoked_at IS NOT NULL AS revoked,
                    coalesce(p.status = 'active' AND c.status = 'active', false) AS usable
               FROM api_keys k
               LEFT JOIN partitions p ON p.customer_id = k.customer_id
                                     AND p.partition_id = k.partition_id
               LEFT JOIN known_customers c ON c.customer_id = k.customer_id
              WHERE k.key_hash = $1",
        )
        .bind(hash)
        .fetch_optional(&mut *tx)
        .await?;
        drop(tx);
        Ok(r)
    }

    /// Writes the collected `lastUsedAt` times in one statement.
    pub async fn flush_usage(&self) -> Result<usize, ApiError> {
        let used: Vec<(CustomerId, ApiKeyId)> = {
            let mut set = self.used.lock().unwrap_or_else(|e| e.into_inner());
            set.drain().collect()
        };
        if used.is_empty() {
            return Ok(0);
        }
        let (customers, keys): (Vec<CustomerId>, Vec<ApiKeyId>) = used.iter().copied().unzip();
        let mut tx = db::begin(&self.pool, Scope::System).await?;
        sqlx::query(
            "UPDATE api_keys SET last_used_at = now()
              WHERE (customer_id, key_id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))",
        )
        .bind(customers)
        .bind(keys)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(used.len())
    }
}

/// Flushes `lastUsedAt` every `interval` until `stop` (and once more then).
pub async fn flush_usage_loop(
    v: std::sync::Arc<KeyVerifier>,
    interval: Duration,
    stop: CancellationToken,
) {
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(interval) => false,
            _ = stop.cancelled() => true,
        };
        if let Err(e) = v.flush_usage().await {
            tracing::warn!(error = %e, "writing lastUsedAt failed");
        }
        if stopping {
            return;
        }
    }
}
