//! A search within one customer finds its candidates through the customer's term keys
//! (migration 1006): every write of a document keeps them, so the keyed search and the
//! platform admin's (which does not use them) always agree.

use search_sync::index::postgres::Postgres;
use search_sync::index::{Kind, Removal, SearchBackend};
use serde_json::json;
use shared_model::auth::Permission;
use shared_model::db::{self, Scope};
use shared_model::ids::{ClientId, CustomerId};
use shared_model::testkit;

use crate::search::{names, search, sorted};
use crate::{Ctx, document};

impl Ctx {
    /// The keys the index holds for the document of `id`, read past row-level security.
    async fn keys_of(&self, id: uuid::Uuid) -> i64 {
        let mut su = self.db.superuser().await;
        sqlx::query_scalar("SELECT count(*) FROM document_keys WHERE id = $1")
            .bind(id)
            .fetch_one(&mut su)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn renames_moves_and_deletes_keep_the_keys_a_tenants_search_uses() {
    let ctx = Ctx::new().await;
    let (tenant, other) = (CustomerId::new(), CustomerId::new());
    let id = uuid::Uuid::now_v7();
    let mut doc = document(Kind::Client, id, tenant, Some(ClientId(id)), "Acme Bakery");
    doc.email = Some("orders@acme-bakery.example".into());
    doc.city = Some("Köln".into());
    ctx.index(&[doc.clone()]).await;
    // "acme", "bakery", "koln", the e-mail address and its domain's words as its terms.
    assert!(ctx.keys_of(id).await >= 4);

    let tenant_client = ctx.client().as_user(&testkit::token(
        "t",
        Some(tenant),
        &[Permission::ViewClient],
    ));
    let other_client =
        ctx.client()
            .as_user(&testkit::token("o", Some(other), &[Permission::ViewClient]));
    let admin = ctx.client().as_user(&testkit::token(
        "a",
        None,
        &[Permission::PlatformAdminSearchAllCustomers],
    ));
    let found = |q: &str| json!({"q": q, "kinds": ["client"]});
    for q in ["bakery", "koln", "orders@acme", "acme bak"] {
        assert_eq!(
            names(&search(&tenant_client, found(q)).await),
            ["Acme Bakery"],
            "{q}"
        );
        assert_eq!(
            names(&search(&admin, found(q)).await),
            ["Acme Bakery"],
            "{q}"
        );
        assert!(
            names(&search(&other_client, found(q)).await).is_empty(),
            "{q}"
        );
    }

    // Renamed and moved: the old terms find nothing, the new ones find it.
    doc.version = 2;
    doc.name = "Zenith Patisserie".into();
    doc.city = Some("Bonn".into());
    ctx.index(&[doc.clone()]).await;
    for (q, hits) in [
        ("bakery", &[][..]),
        ("koln", &[][..]),
        ("patisserie", &["Zenith Patisserie"][..]),
        ("bonn", &["Zenith Patisserie"][..]),
        ("orders@acme", &["Zenith Patisserie"][..]),
    ] {
        assert_eq!(names(&search(&tenant_client, found(q)).await), hits, "{q}");
        assert_eq!(names(&search(&admin, found(q)).await), hits, "{q}");
    }

    // A tombstone has no keys; the other documents of the tenant keep theirs.
    let kept = uuid::Uuid::now_v7();
    ctx.index(&[document(
        Kind::Client,
        kept,
        tenant,
        Some(ClientId(kept)),
        "Zenith Tools",
    )])
    .await;
    let mut tx = db::begin(&ctx.db.pool, Scope::System).await.unwrap();
    let removal = Removal {
        kind: Kind::Client,
        id,
        customer_id: tenant,
        client_id: Some(ClientId(id)),
        version: 3,
    };
    assert!(Postgres::delete(&mut tx, removal).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(ctx.keys_of(id).await, 0);
    assert!(ctx.keys_of(kept).await > 0);
    assert_eq!(
        sorted(names(&search(&tenant_client, found("zenith")).await)),
        ["Zenith Tools"]
    );

    // The customer's deletion takes its documents' keys with them.
    let mut tx = db::begin(&ctx.db.pool, Scope::System).await.unwrap();
    Postgres::delete_owned(&mut tx, tenant, None).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(ctx.keys_of(kept).await, 0);
    assert!(names(&search(&tenant_client, found("zenith")).await).is_empty());
}

impl Ctx {
    /// Where the document of `id` holds `term`, as its key says (1 name, 2 city, 4 identifier).
    async fn places_of(&self, id: uuid::Uuid, customer: CustomerId, term: &str) -> Option<i16> {
        let mut su = self.db.superuser().await;
        sqlx::query_scalar(
            "SELECT places FROM document_keys WHERE id = $1 AND key = search_scoped_key($2, $3)",
        )
        .bind(id)
        .bind(customer.0)
        .bind(term)
        .fetch_optional(&mut su)
        .await
        .unwrap()
    }
}

#[tokio::test]
async fn the_keys_say_where_a_term_is_and_rank_as_the_word_arrays_do() {
    let ctx = Ctx::new().await;
    let tenant = CustomerId::new();
    let now = time::OffsetDateTime::now_utc();
    let client = |name: &str, city: &str, email: Option<&str>, ago: i64| {
        let id = uuid::Uuid::now_v7();
        let mut d = document(Kind::Client, id, tenant, Some(ClientId(id)), name);
        d.updated_at = now - time::Duration::seconds(ago);
        d.city = Some(city.into());
        d.email = email.map(Into::into);
        d
    };
    let mut in_city = client("Berlin Bakery", "Paris", None, 3);
    let in_name = client("Paris Bakery", "Berlin", None, 2);
    let both = client("Paris Tools", "Paris", Some("paris@tools.example"), 1);
    ctx.index(&[in_city.clone(), in_name.clone(), both.clone()])
        .await;
    assert_eq!(ctx.places_of(in_city.id, tenant, "paris").await, Some(2));
    assert_eq!(ctx.places_of(in_name.id, tenant, "paris").await, Some(1));
    assert_eq!(ctx.places_of(both.id, tenant, "paris").await, Some(3));
    assert_eq!(
        ctx.places_of(both.id, tenant, "paris@tools.example").await,
        Some(4)
    );

    let tenant_client = ctx.client().as_user(&testkit::token(
        "t",
        Some(tenant),
        &[Permission::ViewClient],
    ));
    let admin = ctx.client().as_user(&testkit::token(
        "a",
        None,
        &[Permission::PlatformAdminSearchAllCustomers],
    ));
    let found = |q: &str| json!({"q": q, "kinds": ["client"]});
    let agree = |q: &'static str| {
        let (tenant_client, admin) = (&tenant_client, &admin);
        async move {
            let keyed = names(&search(tenant_client, found(q)).await);
            assert_eq!(keyed, names(&search(admin, found(q)).await), "{q}");
            keyed
        }
    };
    // A match in the name before one in the city; among names the most recently updated.
    assert_eq!(
        agree("paris").await,
        ["Paris Tools", "Paris Bakery", "Berlin Bakery"]
    );
    assert_eq!(agree("berlin").await, ["Berlin Bakery", "Paris Bakery"]);
    // An identifier by its key's identifier place only; a word never as an identifier.
    assert_eq!(agree("paris@tools").await, ["Paris Tools"]);
    assert_eq!(
        agree("pari bakery").await,
        ["Paris Bakery", "Berlin Bakery"]
    );

    // The term moves from the city to the name: its key's place follows.
    in_city.version = 2;
    in_city.name = "Paris Berlin Bakery".into();
    in_city.city = None;
    in_city.updated_at = now;
    ctx.index(&[in_city.clone()]).await;
    assert_eq!(ctx.places_of(in_city.id, tenant, "paris").await, Some(1));
    assert_eq!(
        agree("paris").await,
        ["Paris Berlin Bakery", "Paris Tools", "Paris Bakery"]
    );
}
