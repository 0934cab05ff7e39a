//! The keys' background job: marking keys past `expiresAt` expired (the verifier's own loops,
//! its change feed, heartbeat and usage flush, are in [`super::verify`]).

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::store::expire_due;

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
