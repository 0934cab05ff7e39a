//! A search's transaction begins with the backend's planner settings, which end with it, and
//! its statements run with generic plans (prepared once per connection, never planned anew).

use search_sync::index::filter::{Column, Expr};
use search_sync::index::postgres::Postgres;
use search_sync::index::query::Query;
use search_sync::index::{Kind, SearchBackend};
use shared_model::db::{self, Scope};
use shared_model::ids::{ClientId, CustomerId};

use crate::{Ctx, document};

async fn setting(conn: &mut sqlx::PgConnection, name: &str) -> String {
    sqlx::query_scalar("SELECT current_setting($1)")
        .bind(name)
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_search_transaction_has_its_settings_and_they_end_with_it() {
    let ctx = Ctx::new().await;
    let one = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&ctx.db.app_url)
        .await
        .unwrap();
    let mut tx = db::begin_with(&one, Scope::System, Postgres::SEARCH_SETTINGS)
        .await
        .unwrap();
    for (name, value) in Postgres::SEARCH_SETTINGS {
        assert_eq!(setting(&mut tx, name).await, *value, "{name}");
    }
    tx.commit().await.unwrap();
    // The same (only) connection, in its next transaction: the defaults again.
    let mut tx = db::begin(&one, Scope::System).await.unwrap();
    assert_eq!(setting(&mut tx, "plan_cache_mode").await, "auto");
    assert_eq!(setting(&mut tx, "app.platform_admin").await, "on");
}

#[tokio::test]
async fn a_setting_that_is_not_a_plain_name_and_value_is_refused_before_anything_runs() {
    let ctx = Ctx::new().await;
    for bad in [
        ("jit", "off', true); SELECT ('"),
        ("jit; x", "off"),
        ("jit", ""),
    ] {
        let err = db::begin_with(&ctx.db.pool, Scope::System, &[bad])
            .await
            .err()
            .unwrap_or_else(|| panic!("{bad:?} was accepted"));
        assert!(err.to_string().contains("not a plain name"), "{err}");
    }
    let mut tx = db::begin_with(&ctx.db.pool, Scope::System, &[("jit", "off")])
        .await
        .unwrap();
    assert_eq!(setting(&mut tx, "jit").await, "off");
}

#[tokio::test]
async fn a_tenants_searches_run_on_generic_plans_and_find_the_same() {
    let ctx = Ctx::new().await;
    let tenant = CustomerId::new();
    let mut docs = Vec::new();
    for (i, name) in ["Jensen Bakery", "Jansen Tools", "Jones Farm"]
        .iter()
        .enumerate()
    {
        let id = uuid::Uuid::now_v7();
        let mut d = document(Kind::Client, id, tenant, Some(ClientId(id)), name);
        d.version = i as i64 + 1;
        docs.push(d);
    }
    ctx.index(&docs).await;
    let of_tenant = Expr::Eq(Column::CustomerId, tenant.into());
    let mut found = Vec::new();
    // More runs than the five custom plans `auto` would make before choosing.
    for _ in 0..7 {
        let mut tx = db::begin_with(
            &ctx.db.pool,
            Scope::Tenant(tenant),
            Postgres::SEARCH_SETTINGS,
        )
        .await
        .unwrap();
        let query = Query::new("jense", vec![Kind::Client], of_tenant.clone(), 10);
        let hits = Postgres::search(&mut tx, &query).await.unwrap().hits;
        found.push(hits.into_iter().map(|h| h.doc.name).collect::<Vec<_>>());
        let plans: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements
              WHERE (statement LIKE '%FROM vocabulary%' OR statement LIKE '%FROM document_keys%')
                AND statement NOT LIKE '%pg_prepared_statements%'",
        )
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        assert_eq!(plans.len(), 2, "the expansion and the page: {plans:?}");
        for (statement, _, custom) in &plans {
            assert_eq!(*custom, 0, "planned for its values: {statement}");
        }
    }
    // "jense": Jensen as a prefix; never Jones.
    assert_eq!(found[0].first().map(String::as_str), Some("Jensen Bakery"));
    assert!(!found[0].iter().any(|n| n == "Jones Farm"), "{found:?}");
    assert!(found.iter().all(|f| *f == found[0]), "{found:?}");
}
