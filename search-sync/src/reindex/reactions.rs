//! The owning services' answers to a reindex: `snapshot.started` (what to expect) and
//! `snapshot.page` (the entities), applied to the running reindex whose id is the snapshot's.
//! Pages of another snapshot (a reindex that failed, another deployment's) change nothing.
//! When the last part's last page arrives, the same transaction switches
//! ([`super::store::switch`]).

use std::sync::Arc;

use futures_util::FutureExt;
use shared_model::bus::{Handler, Subscription};
use shared_model::db::{self, Scope};
use shared_model::error::ApiError;
use shared_model::events::client::{ClientAddress, ClientSnapshot};
use shared_model::events::customer::Customer;
use shared_model::events::org::Contact;
use shared_model::events::snapshot::{
    SNAPSHOT_PAGE, SNAPSHOT_STARTED, SnapshotPage, SnapshotProgress,
};
use sqlx::PgConnection;

use super::store;
use crate::documents::addresses;
use crate::documents::reactions::Indexed;
use crate::index::postgres::Postgres;
use crate::index::{Document, SearchBackend};

fn decode<T: serde::de::DeserializeOwned>(items: &[serde_json::Value]) -> anyhow::Result<Vec<T>> {
    items
        .iter()
        .map(|i| Ok(serde_json::from_value(i.clone())?))
        .collect()
}

async fn started(conn: &mut PgConnection, p: SnapshotProgress) -> Result<(), ApiError> {
    if store::lock_running(conn, p.snapshot_id).await?.is_none() {
        return Ok(());
    }
    for c in &p.counts {
        store::expect(conn, p.snapshot_id, &c.entity, &p.source, c.count).await?;
    }
    Ok(())
}

/// The documents of a page, with the client's groups; addresses are written to the live
/// address book at once (version-guarded, as their events are) and move their client's place.
async fn documents(
    conn: &mut PgConnection,
    p: &SnapshotPage,
) -> Result<Vec<(Document, Vec<uuid::Uuid>)>, ApiError> {
    Ok(match p.entity.as_str() {
        "customer" => decode::<Customer>(&p.items)?
            .iter()
            .map(|c| (c.document(), Vec::new()))
            .collect(),
        "client" => decode::<ClientSnapshot>(&p.items)?
            .into_iter()
            .map(|c| {
                let groups = c.groups.iter().map(|g| g.as_uuid()).collect();
                (c.client.document(), groups)
            })
            .collect(),
        "contact" => decode::<Contact>(&p.items)?
            .iter()
            .map(|c| (c.document(), Vec::new()))
            .collect(),
        "client_address" => {
            for a in decode::<ClientAddress>(&p.items)? {
                if addresses::record(conn, &a, false).await? {
                    let place = addresses::place_of(conn, a.customer_id, a.client_id).await?;
                    Postgres::set_place(conn, a.client_id, place).await?;
                }
            }
            Vec::new()
        }
        other => {
            return Err(ApiError::internal(format!(
                "snapshot.page of an entity search-sync does not index: {other}"
            )));
        }
    })
}

async fn page(conn: &mut PgConnection, p: SnapshotPage) -> Result<(), ApiError> {
    let Some(reindex) = store::lock_running(conn, p.snapshot_id).await? else {
        return Ok(());
    };
    let docs = documents(conn, &p).await?;
    store::rebuild(conn, p.snapshot_id, &docs).await?;
    store::received(
        conn,
        p.snapshot_id,
        &p.entity,
        &p.source,
        p.items.len() as i64,
        (p.sequence, p.last),
    )
    .await?;
    let parts = store::parts(conn, p.snapshot_id).await?;
    if parts.iter().all(|part| part.done) {
        let (written, removed) = store::switch(conn, &reindex).await?;
        let received: i64 = parts.iter().map(|part| part.received).sum();
        tracing::info!(reindex_id = %reindex.reindex_id, customer_id = ?reindex.customer_id,
            received, written, removed, "reindex complete: the new generation is live");
        metrics::counter!("reindexes_total", "outcome" => "completed").increment(1);
    }
    Ok(())
}

/// The queue of snapshot answers. Every answer's events go to one lane (their subject is the
/// snapshot), so its pages apply in the order they were sent.
pub fn subscription() -> Subscription {
    let on_started: Handler = Arc::new(|conn, event| {
        async move {
            let p: SnapshotProgress = serde_json::from_value(event.data.clone())?;
            db::set_scope(conn, Scope::System).await?;
            started(conn, p).await.map_err(ApiError::into_anyhow)
        }
        .boxed()
    });
    let on_page: Handler = Arc::new(|conn, event| {
        async move {
            let p: SnapshotPage = serde_json::from_value(event.data.clone())?;
            db::set_scope(conn, Scope::System).await?;
            page(conn, p).await.map_err(ApiError::into_anyhow)
        }
        .boxed()
    });
    Subscription::new("reindex-snapshots")
        .on(SNAPSHOT_STARTED, on_started)
        .on(SNAPSHOT_PAGE, on_page)
}
