//! The relevance rules over a fixed corpus: the top hits of typical queries (misspelled and
//! partial names, e-mail prefixes, accents), and the scope a search stays in.

use search_sync::index::filter::{Column, Expr};
use search_sync::index::postgres::Postgres;
use search_sync::index::query::Query;
use search_sync::index::{Document, Kind, SearchBackend};
use shared_model::db::{self, Scope};
use shared_model::ids::{ClientId, CustomerId};
use time::OffsetDateTime;

use crate::Ctx;

/// A document of `customer` (a client, or a contact of a client) updated `age` days ago.
fn doc(
    kind: Kind,
    customer: CustomerId,
    name: &str,
    email: Option<&str>,
    city: Option<&str>,
    age: i64,
) -> Document {
    let id = uuid::Uuid::now_v7();
    let mut d = crate::document(kind, id, customer, Some(ClientId(id)), name);
    d.email = email.map(String::from);
    d.domain = email
        .and_then(|e| e.split_once('@'))
        .map(|(_, d)| d.to_string());
    d.city = city.map(String::from);
    d.created_at = OffsetDateTime::now_utc() - time::Duration::days(age);
    d.updated_at = d.created_at;
    d
}

/// The documents of `customer`.
fn of(customer: CustomerId) -> Expr {
    Expr::Eq(Column::CustomerId, customer.into())
}

struct Corpus {
    ctx: Ctx,
    tenant: CustomerId,
    other: CustomerId,
}

impl Corpus {
    async fn new() -> Corpus {
        let ctx = Ctx::new().await;
        let (tenant, other) = (CustomerId::new(), CustomerId::new());
        let t = tenant;
        let docs = [
            doc(
                Kind::Client,
                t,
                "Johnson & Partners",
                Some("info@johnson-partners.example"),
                Some("Boston"),
                5,
            ),
            doc(
                Kind::Contact,
                t,
                "Jonathan Smith",
                Some("jon.smith@acme.example"),
                None,
                4,
            ),
            doc(
                Kind::Client,
                t,
                "Acme Corporation",
                Some("sales@acme.example"),
                Some("Springfield"),
                9,
            ),
            doc(Kind::Client, t, "Müller Bäckerei", None, Some("München"), 7),
            doc(
                Kind::Client,
                t,
                "Mullerton Logistics",
                None,
                Some("Boston"),
                1,
            ),
            doc(
                Kind::Client,
                t,
                "Boston Consulting",
                None,
                Some("Chicago"),
                8,
            ),
            doc(Kind::Client, t, "McDonalds Franchise", None, None, 6),
            doc(Kind::Client, t, "Johnsen Plumbing", None, None, 2),
        ];
        for (customer, list) in [
            (tenant, docs.to_vec()),
            (
                other,
                vec![doc(
                    Kind::Client,
                    other,
                    "Johnson Industries",
                    Some("hq@johnson.example"),
                    Some("Boston"),
                    0,
                )],
            ),
        ] {
            let mut tx = db::begin(&ctx.db.pool, Scope::Tenant(customer))
                .await
                .unwrap();
            for d in &list {
                assert!(Postgres::upsert(&mut tx, d).await.unwrap());
            }
            tx.commit().await.unwrap();
        }
        Corpus { ctx, tenant, other }
    }

    /// The names of the tenant's hits for `text`, best first.
    async fn names(&self, text: &str) -> Vec<String> {
        self.names_within(text, of(self.tenant), self.tenant).await
    }

    async fn names_within(&self, text: &str, filter: Expr, scope: CustomerId) -> Vec<String> {
        let query = Query::new(text, vec![Kind::Client, Kind::Contact], filter, 10);
        let mut tx = db::begin_with(
            &self.ctx.db.pool,
            Scope::Tenant(scope),
            Postgres::SEARCH_SETTINGS,
        )
        .await
        .unwrap();
        Postgres::search(&mut tx, &query)
            .await
            .unwrap()
            .hits
            .into_iter()
            .map(|h| h.doc.name)
            .collect()
    }
}

#[tokio::test]
async fn typical_queries_find_what_a_user_expects_first() {
    let c = Corpus::new().await;
    // A swap is one typo, allowed from 4 characters; "johnsen" is two away from "jonhson".
    assert_eq!(c.names("jonhson").await, ["Johnson & Partners"]);
    // Exact beats prefix; accents fold both ways.
    assert_eq!(
        c.names("muller").await,
        ["Müller Bäckerei", "Mullerton Logistics"]
    );
    assert_eq!(c.names("MÜLLER bäck").await, ["Müller Bäckerei"]);
    // In the name beats elsewhere (the city); ties by the most recently updated.
    assert_eq!(
        c.names("boston").await,
        [
            "Boston Consulting",
            "Mullerton Logistics",
            "Johnson & Partners"
        ]
    );
    // Search as you type: the last word is a prefix; a name beats an e-mail domain.
    assert_eq!(c.names("acm").await, ["Acme Corporation", "Jonathan Smith"]);
    assert_eq!(c.names("jonathan smi").await, ["Jonathan Smith"]);
    // Every word must match (a word may match an identifier: "acme" is his e-mail's domain).
    assert!(c.names("jonathan boston").await.is_empty());
    assert_eq!(c.names("jonathan acme").await, ["Jonathan Smith"]);
    // E-mail addresses: exact or as a prefix, never with a typo.
    assert_eq!(c.names("sales@acme").await, ["Acme Corporation"]);
    assert_eq!(c.names("jon.smith@acme.example").await, ["Jonathan Smith"]);
    assert!(c.names("sales@acne.example").await.is_empty());
    // Two typos from 8 characters, one from 4, none below.
    assert_eq!(c.names("mcdonals").await, ["McDonalds Franchise"]);
    assert_eq!(c.names("acne").await, ["Acme Corporation"]);
    assert!(
        c.names("acn").await.is_empty(),
        "no typo under 4, and no prefix of acn"
    );
    // A typo ranks below an exact match: "johnsen" exact, "johnson" one away.
    assert_eq!(
        c.names("johnsen").await,
        ["Johnsen Plumbing", "Johnson & Partners"]
    );
    assert!(c.names("zzzz").await.is_empty());
    // No text: every document in scope, the most recently updated first.
    let all = c.names("   ").await;
    assert_eq!(all.len(), 8);
    assert_eq!(all[0], "Mullerton Logistics");
    assert!(
        c.names(" -- ").await.is_empty(),
        "words of no letters match nothing"
    );
}

#[tokio::test]
async fn a_search_stays_within_its_scope_and_row_level_security() {
    let c = Corpus::new().await;
    assert_eq!(
        c.names("johnson").await,
        ["Johnson & Partners", "Johnsen Plumbing"]
    );
    // Asking for every document under the tenant's scope: row-level security still keeps
    // the other tenant's out.
    assert_eq!(
        c.names_within("johnson industries", Expr::True, c.tenant)
            .await,
        Vec::<String>::new()
    );
    // The other tenant finds its own.
    assert_eq!(
        c.names_within("johnson", of(c.other), c.other).await,
        ["Johnson Industries"]
    );
    // A scope naming another tenant than the transaction's finds nothing.
    assert!(
        c.names_within("johnson", of(c.other), c.tenant)
            .await
            .is_empty()
    );
}
