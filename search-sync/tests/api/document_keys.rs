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
