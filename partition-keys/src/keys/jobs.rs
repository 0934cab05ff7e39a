//! The keys' background jobs: marking keys past `expiresAt` expired, and the verifier's change
//! feed, heartbeat and `lastUsedAt` flush.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use super::store::expire_due;
use super::verify::{FEED_CHANNEL, KeyVerifier};

/// Runs `expire_due` every `interval` until `stop`.
pub async fn expiry_loop(pool: PgPool, interval: Duration, stop: CancellationToken) {
    loop {
        if let Err(e) = expire_due(&pool).await {
            tracing::warn!(error = %e, "expiring API keys failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Flushes `lastUsedAt` every `interval` until `stop` (and once more then).
pub async fn flush_usage_loop(v: Arc<KeyVerifier>, interval: Duration, stop: CancellationToken) {
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

/// Listens to the change feed until `stop`, reconnecting after any interruption. A
/// (re)connection empties the cache, which is trusted again once this replica's own
/// heartbeat comes back through the new connection.
pub async fn feed_loop(v: Arc<KeyVerifier>, stop: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        v.distrust();
        let listened = async {
            let mut l = PgListener::connect_with(&v.feed_pool).await?;
            l.listen(FEED_CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        let mut listener = tokio::select! {
            l = listened => match l {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "key cache feed: cannot listen; verifying from the database");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            },
            _ = stop.cancelled() => return,
        };
        // Anything cached before LISTEN took effect may predate a change it missed.
        v.distrust();
        tracing::info!("key cache feed: listening");
        backoff = Duration::from_millis(100);
        // A listener that hears nothing (not even its heartbeats) for this long is replaced.
        let silence_limit = v.timing.stale_after * 4;
        loop {
            let next = tokio::select! {
                n = tokio::time::timeout(silence_limit, listener.try_recv()) => n,
                _ = stop.cancelled() => return,
            };
            match next {
                Ok(Ok(Some(n))) => v.on_notification(n.payload()),
                Ok(Ok(None)) => {
                    tracing::warn!("key cache feed: connection lost; reconnecting");
                    break;
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "key cache feed failed; reconnecting");
                    break;
                }
                Err(_) => {
                    tracing::warn!("key cache feed: silent too long; reconnecting");
                    break;
                }
            }
        }
    }
}

/// Sends this replica's heartbeat through the feed every `timing.heartbeat` until `stop`.
pub async fn heartbeat_loop(v: Arc<KeyVerifier>, stop: CancellationToken) {
    let replica = v.replica.simple().to_string();
    loop {
        let sent_us = v.now_us();
        let payload = format!("h:{replica}:{sent_us}");
        if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(FEED_CHANNEL)
            .bind(payload)
            .execute(&v.feed_pool)
            .await
        {
            tracing::debug!(error = %e, "key cache heartbeat not sent");
        }
        tokio::select! {
            _ = tokio::time::sleep(v.timing.heartbeat) => {}
            _ = stop.cancelled() => return,
        }
    }
}
