//! Tenant isolation: through the API and underneath it.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared_model::db::{self, Scope};

use crate::{Ctx, consumer, problem};

#[tokio::test]
async fn another_tenant_gets_nothing_through_any_endpoint() {
    let ctx = Ctx::new().await;
    let a = ctx.create(consumer("tenant-a", "Tenant A")).await;
    let b = ctx.create(consumer("tenant-b", "Tenant B")).await;
    let a_id = a["id"].as_str().unwrap();
    let b_token = ctx.tenant(b["id"].as_str().unwrap());
    let path = format!("/v1/customers/{a_id}");

    let res = ctx
        .req(Method::GET, &path, Some(&b_token))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::BAD_REQUEST, "KEY_MISMATCH").await;
    let res = ctx
        .req(Method::PATCH, &path, Some(&b_token))
        .json(&json!({"name": "pwned"}))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::BAD_REQUEST, "KEY_MISMATCH").await;
    let res = ctx
        .req(Method::DELETE, &path, Some(&b_token))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let list: Value = ctx
        .req(Method::GET, "/v1/customers?limit=200", Some(&b_token))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], b["id"]);
    // A's record is untouched.
    let got: Value = ctx
        .req(Method::GET, &path, Some(&ctx.admin()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["name"], "Tenant A");
    assert_eq!(got["version"], 1);
}

#[tokio::test]
async fn row_level_security_hides_other_tenants_from_an_unfiltered_query() {
    let ctx = Ctx::new().await;
    let a = ctx.create(consumer("rls-a", "A")).await;
    ctx.create(consumer("rls-b", "B")).await;
    let a_id = a["id"].as_str().unwrap().parse().unwrap();
    let pool = &ctx.db.pool;

    // The runtime role is really subject to RLS.
    let (superuser, bypass): (bool, bool) =
        sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            .fetch_one(pool)
            .await
            .unwrap();
    assert!(!superuser && !bypass);

    // A store query that forgets its tenant filter still sees only the tenant's rows...
    let mut tx = db::begin(pool, Scope::Tenant(a_id)).await.unwrap();
    let unfiltered = customer_api::customers::store::list(&mut tx, &Default::default(), 100)
        .await
        .unwrap();
    assert_eq!(unfiltered.len(), 1);
    assert_eq!(unfiltered[0].id, a_id);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM customers")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    // customer.created and customer.claims_changed of the tenant's own creation.
    assert_eq!(outbox, 2, "only the tenant's own events");
    // ...and cannot write another tenant's row.
    let updated = sqlx::query("UPDATE customers SET name = 'x'")
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 1);
    tx.rollback().await.unwrap();

    // Without any tenant context nothing is visible, and the setting does not outlive its
    // transaction on a pooled connection.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM customers")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    let tx = db::begin(pool, Scope::Tenant(a_id)).await.unwrap();
    tx.commit().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM customers")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(n, 0);

    // Inserting a row for another tenant is refused by the policy.
    let mut tx = db::begin(pool, Scope::Tenant(a_id)).await.unwrap();
    let err = sqlx::query(
        "INSERT INTO customers (customer_id, name, customer_type, bootstrap_tenant_key, created_by, updated_by)
         VALUES ($1, 'x', 'consumer', 'sneaky', 'u', 'u')",
    )
    .bind(uuid::Uuid::now_v7())
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
}

#[tokio::test]
async fn every_tenant_table_is_forced_under_row_level_security_and_hides_other_tenants() {
    let ctx = Ctx::new().await;
    let pool = &ctx.db.pool;
    let tables: Vec<(String, bool, bool)> = sqlx::query_as(
        "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relkind = 'r'
            AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                          AND a.attname = 'customer_id' AND NOT a.attisdropped)
          ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(tables.len() >= 14, "{tables:?}");
    for (table, rls, forced) in &tables {
        assert!(
            *rls && *forced,
            "{table} is not under forced row-level security"
        );
    }

    // Tenant A fills every kind of row through the API; tenant B's context sees none of it.
    let (a, t, clients) = crate::fixtures::tenant_setup(&ctx, "rls-all-a").await;
    let (b, _, _) = crate::fixtures::tenant_setup(&ctx, "rls-all-b").await;
    let client = crate::ok(
        crate::fixtures::send(
            &ctx,
            reqwest::Method::POST,
            &clients,
            &t,
            Some(crate::fixtures::acme_client()),
        )
        .await,
        reqwest::StatusCode::CREATED,
    )
    .await;
    let cloc = format!("{clients}/{}", client["id"].as_str().unwrap());
    for (path, body) in [
        (
            format!("{cloc}/addresses"),
            serde_json::json!({"lines": ["1 Main St"], "defaultShipping": true}),
        ),
        (
            format!("/v1/customers/{a}/tags"),
            serde_json::json!({"name": "VIP"}),
        ),
        (
            format!("/v1/customers/{a}/groups"),
            serde_json::json!({"name": "Gold"}),
        ),
    ] {
        crate::ok(
            crate::fixtures::send(&ctx, reqwest::Method::POST, &path, &t, Some(body)).await,
            reqwest::StatusCode::CREATED,
        )
        .await;
    }
    let mut tx = db::begin(pool, Scope::Tenant(b.parse().unwrap()))
        .await
        .unwrap();
    for (table, _, _) in &tables {
        let foreign: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE customer_id <> '{b}'::uuid"
        )))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        assert_eq!(foreign, 0, "tenant B sees another tenant's rows in {table}");
    }
    tx.rollback().await.unwrap();
}
