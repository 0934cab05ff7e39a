//! search-sync integration tests: the real service against a PostgreSQL database of its own
//! (used through a role RLS applies to) and RabbitMQ.

mod document_keys;
mod documents;
mod key_scopes;
mod keys;
mod plans;
mod reindex;
mod relevance;
mod search;

use std::time::{Duration, Instant};

use search_sync::index::postgres::Postgres;
use search_sync::index::{Document, Kind, SearchBackend};
use shared_model::db::{self, Scope};
use shared_model::events::CloudEvent;
use shared_model::ids::{ClientId, CustomerId};
use shared_model::testkit::Harness;
use time::OffsetDateTime;

/// A document of `kind` named `name`, owned by `customer` (and `client`), updated now, every
/// other field empty.
pub fn document(
    kind: Kind,
    id: uuid::Uuid,
    customer: CustomerId,
    client: Option<ClientId>,
    name: &str,
) -> Document {
    let at = OffsetDateTime::now_utc();
    Document {
        kind,
        id,
        customer_id: customer,
        client_id: client,
        parent_id: None,
        version: 1,
        name: name.into(),
        email: None,
        phone: None,
        domain: None,
        external_id: None,
        codes: Vec::new(),
        doc_type: None,
        status: None,
        enabled: true,
        tags: Vec::new(),
        assignee: None,
        country: None,
        city: None,
        industry_sector: None,
        industry_group: None,
        size_range: None,
        created_at: at,
        updated_at: at,
    }
}

/// search-sync under test.
pub struct Ctx(Harness);

impl std::ops::Deref for Ctx {
    type Target = Harness;
    fn deref(&self) -> &Harness {
        &self.0
    }
}

/// A document as the index holds it: the fields the tests look at.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Doc {
    pub kind: String,
    pub id: uuid::Uuid,
    pub customer_id: uuid::Uuid,
    pub client_id: Option<uuid::Uuid>,
    pub parent_id: Option<uuid::Uuid>,
    pub version: i64,
    pub deleted: bool,
    pub name: String,
    pub folded_name: String,
    pub email: Option<String>,
    pub domain: Option<String>,
    pub codes: Vec<String>,
    #[sqlx(rename = "type")]
    pub doc_type: Option<String>,
    pub status: Option<String>,
    pub enabled: bool,
    pub tags: Vec<String>,
    pub assignee: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
    pub industry_sector: Option<String>,
    pub groups: Vec<uuid::Uuid>,
}

impl Ctx {
    pub async fn new() -> Ctx {
        Ctx(Harness::start(&search_sync::SERVICE, |_| {}).await)
    }

    /// Writes `docs` into the index as the consumers do.
    pub async fn index(&self, docs: &[Document]) {
        let mut tx = db::begin(&self.db.pool, Scope::System).await.unwrap();
        for d in docs {
            assert!(Postgres::upsert(&mut tx, d).await.unwrap(), "{d:?}");
        }
        tx.commit().await.unwrap();
    }

    /// Every document, tombstones too, read past row-level security.
    pub async fn documents(&self) -> Vec<Doc> {
        let mut su = self.db.superuser().await;
        sqlx::query_as(
            "SELECT kind, id, customer_id, client_id, parent_id, version, deleted, name,
                    folded_name, email, domain, codes, type, status, enabled, tags, assignee,
                    country, city, industry_sector, groups
               FROM documents ORDER BY kind, id",
        )
        .fetch_all(&mut su)
        .await
        .unwrap()
    }

    /// The document of `id`, if the index has one.
    pub async fn document(&self, id: uuid::Uuid) -> Option<Doc> {
        self.documents().await.into_iter().find(|d| d.id == id)
    }

    /// Waits (up to 10 s) until the consumers have taken each of `events` (applied or found
    /// stale: the inbox holds its id).
    pub async fn consumed(&self, events: &[CloudEvent]) {
        let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.id.0).collect();
        let start = Instant::now();
        loop {
            let mut su = self.db.superuser().await;
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox WHERE event_id = ANY($1)")
                .bind(&ids)
                .fetch_one(&mut su)
                .await
                .unwrap();
            if n as usize == ids.len() {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "only {n} of {} events consumed",
                ids.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (up to 10 s) until the document of `id` satisfies `check`.
    pub async fn document_until(
        &self,
        id: uuid::Uuid,
        what: &str,
        check: impl Fn(Option<&Doc>) -> bool,
    ) -> Option<Doc> {
        let start = Instant::now();
        loop {
            let doc = self.document(id).await;
            if check(doc.as_ref()) {
                return doc;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{what}: the document is {doc:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
