//! Key verification with an in-process cache kept exact by a change feed.
//!
//! A key is first checked for shape and checksum (no database work for malformed keys), then
//! looked up by its keyed hash. Lookups, found or not, are cached per replica and dropped when
//! the database says they changed: triggers on `api_keys`, `partitions` and `known_customers`
//! NOTIFY the channel `key_cache` at commit (migration 1002), and every replica LISTENs to it.
//!
//! A lost notification must not leave a revoked key working, so the feed proves it is alive:
//! each replica NOTIFYs a heartbeat naming itself and the instant it was sent every
//! `feed_heartbeat_ms`. PostgreSQL delivers notifications in commit order, so once a replica
//! has processed its own heartbeat sent at S, it has processed every change committed before S.
//! The cache is trusted only until S + `feed_stale_ms` for the newest such S; after that (a
//! broken connection, a stuck listener) every verification goes to the database until the feed
//! recovers, and a reconnection empties the cache. A change committed at T is therefore seen
//! by every replica no later than T + `feed_stale_ms`, and in practice within milliseconds.
//!
//! A lookup that ran while an invalidation arrived is not cached (the cache's epoch moved), so
//! a read from before a change cannot outlive the change's notification. Entries also age out
//! after `cache_max_age_ms` whatever the feed says. Expiry times are compared on every
//! verification. `lastUsedAt` is collected in memory and written in one batch per
//! `last_used_flush_ms`, never on the verification's path.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use shared_model::db::{self, Scope};
use shared_model::error::ApiError;
use shared_model::ids::{ApiKeyId, CustomerId, PartitionId};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::gateway::Verification;
use super::secret;

/// The notification channel of the cache's change feed (see migration 1002).
pub const FEED_CHANNEL: &str = "key_cache";

/// What a valid key grants. Shared by the cache and every verification it answers.
#[derive(Debug)]
pub struct Grant {
    pub key_id: ApiKeyId,
    pub customer_id: CustomerId,
    pub partition_id: PartitionId,
    pub environment: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<OffsetDateTime>,
    /// The grant's answer to `POST /v1/keys/verify`, serialised once.
    answer: OnceLock<Bytes>,
    /// Whether a verification used this grant since `lastUsedAt` was last written (so the
    /// grant is queued for the next write once, not locked into a set by every verification).
    used: AtomicBool,
}

impl Grant {
    /// The JSON of this grant's [`Verification`] (made on first use, then shared: a cached
    /// key's answer is the same bytes for as long as the key works).
    pub fn answer(&self) -> Bytes {
        self.answer
            .get_or_init(|| {
                let v = Verification {
                    valid: true,
                    key_id: Some(self.key_id),
                    customer_id: Some(self.customer_id),
                    partition_id: Some(self.partition_id),
                    environment: Some(self.environment.clone()),
                    scopes: Some(self.scopes.clone()),
                    expires_at: self.expires_at,
                };
                // Ids, strings and a timestamp of a valid year: nothing that can fail.
                Bytes::from(serde_json::to_vec(&v).expect("a verification serialises"))
            })
            .clone()
    }
}

/// A looked-up key with what decides its validity (cloned from the cache for a verification:
/// a pointer and two flags).
#[derive(Clone, Debug)]
struct Record {
    grant: Arc<Grant>,
    revoked: bool,
    usable: bool,
}

/// A key as the lookup reads it.
#[derive(sqlx::FromRow)]
struct Row {
    key_id: ApiKeyId,
    customer_id: CustomerId,
    partition_id: PartitionId,
    environment: String,
    scopes: Vec<String>,
    expires_at: Option<OffsetDateTime>,
    revoked: bool,
    usable: bool,
}

impl From<Row> for Record {
    fn from(r: Row) -> Record {
        Record {
            grant: Arc::new(Grant {
                key_id: r.key_id,
                customer_id: r.customer_id,
                partition_id: r.partition_id,
                environment: r.environment,
                scopes: r.scopes,
                expires_at: r.expires_at,
                answer: OnceLock::new(),
                used: AtomicBool::new(false),
            }),
            revoked: r.revoked,
            usable: r.usable,
        }
    }
}

const MAX_CACHED: usize = 200_000;

type Hash = [u8; 32];

/// Lookups by key hash (found or not) and when they were made.
#[derive(Default)]
struct Cache {
    /// (A fast seeded hasher: the keys are HMAC outputs, and a verification hashes one.)
    entries: HashMap<Hash, (Option<Record>, Instant), foldhash::fast::RandomState>,
    /// Moves on every invalidation.
    epoch: u64,
}

impl Cache {
    fn invalidate(&mut self, what: Invalidation) {
        self.epoch += 1;
        match what {
            Invalidation::Key(h) => {
                self.entries.remove(&h);
            }
            Invalidation::Partition(p) => self
                .entries
                .retain(|_, (r, _)| r.as_ref().is_none_or(|r| r.grant.partition_id != p)),
            Invalidation::Customer(c) => self
                .entries
                .retain(|_, (r, _)| r.as_ref().is_none_or(|r| r.grant.customer_id != c)),
            Invalidation::All => self.entries.clear(),
        }
    }
}

/// What a feed notification makes stale.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Invalidation {
    Key(Hash),
    Partition(PartitionId),
    Customer(CustomerId),
    All,
}

/// Timing of the change feed.
#[derive(Clone, Copy, Debug)]
pub struct FeedTiming {
    /// Entries are dropped after this long whatever the feed says.
    pub max_age: Duration,
    /// How often this replica sends a heartbeat through the feed.
    pub heartbeat: Duration,
    /// How long after its newest heard heartbeat was sent the cache is still trusted.
    pub stale_after: Duration,
}

pub struct KeyVerifier {
    pool: PgPool,
    /// Two connections of the feed's own (the listener and the heartbeats), so a busy main
    /// pool cannot delay heartbeats and turn the cache off when it is needed most.
    pub(super) feed_pool: PgPool,
    hasher: secret::KeyHasher,
    pub(super) timing: FeedTiming,
    /// Read by every verification, written on a miss or an invalidation.
    cache: RwLock<Cache>,
    /// Grants used since `lastUsedAt` was last written (each once: see `Grant::used`).
    used: Mutex<Vec<Arc<Grant>>>,
    /// This replica's name in heartbeats.
    pub(super) replica: Uuid,
    /// Heartbeat times count from here.
    origin: Instant,
    /// Microseconds after `origin` until which cached lookups may be served.
    trusted_until_us: AtomicU64,
}

impl KeyVerifier {
    pub fn new(pool: PgPool, pepper: Vec<u8>, timing: FeedTiming) -> Self {
        let feed_pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .min_connections(0)
            .acquire_timeout(timing.stale_after)
            .connect_lazy_with((*pool.connect_options()).clone());
        Self {
            pool,
            feed_pool,
            hasher: secret::KeyHasher::new(&pepper),
            timing,
            cache: RwLock::default(),
            used: Mutex::default(),
            replica: Uuid::new_v4(),
            origin: Instant::now(),
            trusted_until_us: AtomicU64::new(0),
        }
    }

    /// The stored hash of a key.
    pub fn hash(&self, key: &str) -> Vec<u8> {
        self.hasher.hash(key).to_vec()
    }

    pub(super) fn now_us(&self) -> u64 {
        self.origin.elapsed().as_micros() as u64
    }

    /// Whether the feed has recently proved that every change reached this replica.
    pub fn feed_is_live(&self) -> bool {
        self.now_us() < self.trusted_until_us.load(Ordering::Acquire)
    }

    fn lock_cache(&self) -> std::sync::RwLockWriteGuard<'_, Cache> {
        self.cache.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        self.cache.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// What `key` grants, or `None` for any key that is malformed, unknown, revoked, expired,
    /// of a disabled partition or of a deactivated customer — all alike.
    pub async fn verify(&self, key: &str) -> Result<Option<Arc<Grant>>, ApiError> {
        if secret::public_prefix(key).is_none() {
            return Ok(None);
        }
        let hash: Hash = self.hasher.hash(key);
        let live = self.feed_is_live();
        let (cached, epoch) = {
            let cache = self.read_cache();
            let hit = live
                .then(|| cache.entries.get(&hash))
                .flatten()
                .filter(|(_, at)| at.elapsed() < self.timing.max_age)
                .map(|(r, _)| r.clone());
            (hit, cache.epoch)
        };
        let record = match cached {
            Some(r) => r,
            None => {
                // Boxed: a query's future is some 15 KB, and the handler's future, allocated and
                // moved for every verification, would carry it even when the cache answers.
                let r = Box::pin(self.lookup(&hash)).await?;
                if live {
                    self.remember(hash, &r, epoch);
                }
                r
            }
        };
        let Some(r) = record else {
            return Ok(None);
        };
        let now = OffsetDateTime::now_utc();
        if r.revoked || !r.usable || r.grant.expires_at.is_some_and(|e| e <= now) {
            return Ok(None);
        }
        if !r.grant.used.load(Ordering::Relaxed) && !r.grant.used.swap(true, Ordering::AcqRel) {
            shared_model::lock(&self.used).push(r.grant.clone());
        }
        Ok(Some(r.grant))
    }

    /// Caches a lookup unless an invalidation arrived since it began (it may predate a change)
    /// or the feed stopped being live meanwhile.
    fn remember(&self, hash: Hash, r: &Option<Record>, epoch: u64) {
        let mut cache = self.lock_cache();
        if cache.epoch != epoch || !self.feed_is_live() {
            return;
        }
        if cache.entries.len() >= MAX_CACHED {
            let max_age = self.timing.max_age;
            cache.entries.retain(|_, (_, at)| at.elapsed() < max_age);
            if cache.entries.len() >= MAX_CACHED {
                cache.entries.clear();
            }
        }
        cache.entries.insert(hash, (r.clone(), Instant::now()));
    }

    /// Applies one notification of the feed.
    pub(super) fn on_notification(&self, payload: &str) {
        if let Some(rest) = payload.strip_prefix("h:") {
            // A heartbeat: ours proves every change committed before it was sent has arrived.
            let Some((replica, sent_us)) = rest.split_once(':') else {
                return;
            };
            if replica != self.replica.simple().to_string() {
                return;
            }
            if let Ok(sent_us) = sent_us.parse::<u64>() {
                let until = sent_us + self.timing.stale_after.as_micros() as u64;
                self.trusted_until_us.fetch_max(until, Ordering::AcqRel);
            }
            return;
        }
        match parse_invalidation(payload) {
            Some(what) => self.lock_cache().invalidate(what),
            None => {
                tracing::warn!(
                    payload,
                    "unrecognised key cache notification; emptying the cache"
                );
                self.lock_cache().invalidate(Invalidation::All);
            }
        }
    }

    /// Stops trusting the cache and empties it (the feed was interrupted: notifications may
    /// have been lost).
    pub(super) fn distrust(&self) {
        self.trusted_until_us.store(0, Ordering::Release);
        self.lock_cache().invalidate(Invalidation::All);
    }

    async fn lookup(&self, hash: &Hash) -> Result<Option<Record>, ApiError> {
        // The caller holds a key, not a tenant: the lookup is by the key's hash alone.
        let mut tx = db::begin(&self.pool, Scope::System).await?;
        let r = sqlx::query_as::<_, Row>(
            "SELECT k.key_id, k.customer_id, k.partition_id, k.environment, k.scopes,
                    k.expires_at, k.revoked_at IS NOT NULL AS revoked,
                    coalesce(p.status = 'active' AND c.status = 'active', false) AS usable
               FROM api_keys k
               LEFT JOIN partitions p ON p.customer_id = k.customer_id
                                     AND p.partition_id = k.partition_id
               LEFT JOIN known_customers c ON c.customer_id = k.customer_id
              WHERE k.key_hash = $1",
        )
        .bind(&hash[..])
        .fetch_optional(&mut *tx)
        .await?;
        drop(tx);
        Ok(r.map(Record::from))
    }

    /// Writes the collected `lastUsedAt` times in one statement.
    pub async fn flush_usage(&self) -> Result<usize, ApiError> {
        let grants = std::mem::take(&mut *shared_model::lock(&self.used));
        // A verification from now on queues its grant again (one racing this may be written
        // now or with the next batch: either way within a flush interval of its use).
        let used: HashSet<(CustomerId, ApiKeyId), foldhash::fast::RandomState> = grants
            .iter()
            .map(|g| {
                g.used.store(false, Ordering::Release);
                (g.customer_id, g.key_id)
            })
            .collect();
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

fn parse_invalidation(payload: &str) -> Option<Invalidation> {
    let (kind, value) = payload.split_once(':')?;
    match kind {
        "k" => {
            let bytes = value.as_bytes();
            if bytes.len() != 64 || !bytes.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let mut h = [0u8; 32];
            for (i, pair) in bytes.chunks_exact(2).enumerate() {
                let s = std::str::from_utf8(pair).ok()?;
                h[i] = u8::from_str_radix(s, 16).ok()?;
            }
            Some(Invalidation::Key(h))
        }
        "p" => Uuid::parse_str(value)
            .ok()
            .map(|u| Invalidation::Partition(PartitionId::from(u))),
        "c" => Uuid::parse_str(value)
            .ok()
            .map(|u| Invalidation::Customer(CustomerId::from(u))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_name_what_they_invalidate() {
        let h = [0xabu8; 32];
        assert_eq!(
            parse_invalidation(&format!("k:{}", "ab".repeat(32))),
            Some(Invalidation::Key(h))
        );
        let p = PartitionId::new();
        assert_eq!(
            parse_invalidation(&format!("p:{p}")),
            Some(Invalidation::Partition(p))
        );
        let c = CustomerId::new();
        assert_eq!(
            parse_invalidation(&format!("c:{c}")),
            Some(Invalidation::Customer(c))
        );
        assert_eq!(parse_invalidation("k:zz"), None);
        assert_eq!(parse_invalidation(&format!("k:{}", "+1".repeat(32))), None);
        assert_eq!(parse_invalidation("x:1"), None);
        assert_eq!(parse_invalidation("garbage"), None);
    }

    fn record(c: CustomerId, p: PartitionId) -> Option<Record> {
        Some(Record::from(Row {
            key_id: ApiKeyId::new(),
            customer_id: c,
            partition_id: p,
            environment: "prod".into(),
            scopes: vec!["partitions:read".into()],
            expires_at: None,
            revoked: false,
            usable: true,
        }))
    }

    #[test]
    fn a_grants_answer_is_its_verification() {
        let r = record(CustomerId::new(), PartitionId::new()).unwrap();
        let g = &r.grant;
        let answer: serde_json::Value = serde_json::from_slice(&g.answer()).unwrap();
        assert_eq!(
            answer,
            serde_json::json!({
                "valid": true,
                "keyId": g.key_id,
                "customerId": g.customer_id,
                "partitionId": g.partition_id,
                "environment": "prod",
                "scopes": ["partitions:read"],
            })
        );
        assert_eq!(g.answer().as_ptr(), g.answer().as_ptr(), "made once");
    }

    #[test]
    fn invalidations_drop_exactly_what_they_name() {
        let (c1, c2) = (CustomerId::new(), CustomerId::new());
        let (p1, p2) = (PartitionId::new(), PartitionId::new());
        let mut cache = Cache::default();
        let now = Instant::now();
        cache.entries.insert([1; 32], (record(c1, p1), now));
        cache.entries.insert([2; 32], (record(c1, p2), now));
        cache.entries.insert([3; 32], (record(c2, p2), now));
        cache.entries.insert([4; 32], (None, now));
        cache.invalidate(Invalidation::Key([1; 32]));
        assert_eq!(cache.entries.len(), 3);
        assert_eq!(cache.epoch, 1);
        cache.invalidate(Invalidation::Partition(p2));
        assert!(cache.entries.contains_key(&[4; 32]), "unknown keys stay");
        assert_eq!(cache.entries.len(), 1);
        cache.entries.insert([5; 32], (record(c2, p1), now));
        cache.invalidate(Invalidation::Customer(c1));
        assert_eq!(cache.entries.len(), 2);
        cache.invalidate(Invalidation::Customer(c2));
        assert_eq!(cache.entries.len(), 1);
        cache.invalidate(Invalidation::All);
        assert!(cache.entries.is_empty());
        assert_eq!(cache.epoch, 5);
    }

    /// A verifier whose database is unreachable (so only its cache can answer).
    fn offline_verifier() -> KeyVerifier {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(Duration::from_millis(100))
            .connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .unwrap();
        KeyVerifier::new(
            pool,
            b"pepper".to_vec(),
            FeedTiming {
                max_age: Duration::from_secs(60),
                heartbeat: Duration::from_millis(10),
                stale_after: Duration::from_millis(200),
            },
        )
    }

    #[tokio::test]
    async fn a_used_grant_is_queued_for_last_used_once_per_flush() {
        let v = offline_verifier();
        v.trusted_until_us.store(u64::MAX, Ordering::Release);
        let (key, _) = secret::generate("prod");
        let (c, p) = (CustomerId::new(), PartitionId::new());
        let epoch = v.read_cache().epoch;
        v.remember(v.hasher.hash(&key), &record(c, p), epoch);
        for _ in 0..3 {
            let g = v.verify(&key).await.unwrap().expect("cached grant");
            assert_eq!((g.customer_id, g.partition_id), (c, p));
        }
        assert_eq!(shared_model::lock(&v.used).len(), 1, "queued once");
        // The write fails here (no database), but the batch was taken: the next use queues the
        // grant again.
        assert!(v.flush_usage().await.is_err());
        assert!(shared_model::lock(&v.used).is_empty());
        v.verify(&key).await.unwrap().expect("cached grant");
        assert_eq!(shared_model::lock(&v.used).len(), 1, "queued again");
    }

    #[tokio::test]
    async fn cache_is_trusted_only_after_an_own_heartbeat_and_a_lookup_racing_a_change_is_not_kept()
    {
        let v = offline_verifier();
        assert!(!v.feed_is_live());
        v.on_notification(&format!("h:{}:{}", Uuid::new_v4().simple(), v.now_us()));
        assert!(
            !v.feed_is_live(),
            "another replica's heartbeat proves nothing here"
        );
        v.on_notification(&format!("h:{}:{}", v.replica.simple(), v.now_us()));
        assert!(v.feed_is_live());

        let (c, p) = (CustomerId::new(), PartitionId::new());
        let epoch = v.lock_cache().epoch;
        v.on_notification(&format!("k:{}", "07".repeat(32)));
        v.remember([7; 32], &record(c, p), epoch);
        assert!(
            v.lock_cache().entries.is_empty(),
            "a lookup that began before an invalidation is not cached"
        );
        let epoch = v.lock_cache().epoch;
        v.remember([7; 32], &record(c, p), epoch);
        assert_eq!(v.lock_cache().entries.len(), 1);

        v.distrust();
        assert!(!v.feed_is_live());
        assert!(v.lock_cache().entries.is_empty());
        let epoch = v.lock_cache().epoch;
        v.remember([7; 32], &record(c, p), epoch);
        assert!(
            v.lock_cache().entries.is_empty(),
            "nothing is cached while the feed is down"
        );

        // Trust lapses by itself once heartbeats stop.
        v.on_notification(&format!("h:{}:{}", v.replica.simple(), v.now_us()));
        assert!(v.feed_is_live());
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(!v.feed_is_live());
    }
}
