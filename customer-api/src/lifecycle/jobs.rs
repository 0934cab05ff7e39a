//! The lifecycle's background job: purging customers whose deactivation window has ended.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::store;

/// The purge job: every `service.purge_interval_ms`, purges customers whose window has ended.
pub async fn purge_loop(pool: sqlx::PgPool, interval: Duration, stop: CancellationToken) {
    loop {
        loop {
            match store::purge_due(&pool, 100).await {
                Ok(100) => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "purging customers failed; retrying later");
                    break;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.cancelled() => return,
        }
    }
}
