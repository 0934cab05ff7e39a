//! Reindexing: the index rebuilt from the owning services without downtime.
//!
//! `POST /v1/reindexes` records a running reindex and publishes `snapshot.requested` for the
//! entities below (one tenant's, or all). customer-api and org-structure answer with their
//! entities in `snapshot.page` events at a bounded rate (`shared_model::snapshot`); search-sync
//! writes them into the next generation (`rebuild_documents`) beside the live index, which
//! keeps answering searches and applying events. When every part has arrived, one transaction
//! switches: each rebuilt document replaces the live one unless the live one is newer, and
//! live documents no source holds any more (and nothing wrote since the request) become
//! tombstones. A reindex with no page for `service.reindex_stall_seconds` fails and leaves the
//! live index as it was.

pub mod reactions;
pub mod routes;
pub mod store;

use std::time::Duration;

use shared_model::db::{self, Scope};
use tokio_util::sync::CancellationToken;

/// The entities a reindex asks for, in the order the parts are shown.
pub const ENTITIES: &[&str] = &["customer", "client", "client_address", "contact"];

/// Fails stalled reindexes, every few seconds until `stop`.
pub async fn stall_loop(pool: sqlx::PgPool, stall_seconds: u64, stop: CancellationToken) {
    let every = Duration::from_secs((stall_seconds / 10).clamp(1, 30));
    loop {
        let failed = async {
            let mut tx = db::begin(&pool, Scope::System).await?;
            let ids = store::fail_stalled(&mut tx, stall_seconds as i64).await?;
            tx.commit().await?;
            Ok::<_, shared_model::error::ApiError>(ids)
        }
        .await;
        match failed {
            Ok(ids) => {
                for id in ids {
                    tracing::warn!(reindex_id = %id, stall_seconds, "reindex failed: no snapshot page arrived in time");
                    metrics::counter!("reindexes_total", "outcome" => "failed").increment(1);
                }
            }
            Err(e) => {
                let error = format!("{:#}", e.into_anyhow());
                tracing::warn!(error, "checking for stalled reindexes failed");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
    }
}
