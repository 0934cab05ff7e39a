//! `Idempotency-Key`: replays never outlive what they depend on, never skip authorization,
//! come after authentication, and are stored with the change they answer, or not at all.

use reqwest::{Method, StatusCode};
use serde_json::json;
use shared_model::auth::Permission;
use shared_model::testkit;

use super::{Platform, TENANT_ALL, assert_invalid, assert_problem};

async fn records(db: &shared_model::testkit::TestDb) -> i64 {
    use sqlx::Row;
    let mut conn = db.superuser().await;
    sqlx::query("SELECT count(*) FROM idempotency_records")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_revoked_key_is_not_valid_through_a_replayed_verification() {
    let p = Platform::start("audit-idem-verify").await;
    let (cid, owner) = p.customer("verifier", TENANT_ALL).await;
    let keys = p.keys_path(cid, &owner).await;
    let (s, _, key) = p
        .call(
            &p.keys,
            Method::POST,
            &keys,
            Some(&owner),
            Some(json!({"name": "gw", "kind": "admin"})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{key}");
    let gateway = testkit::token("gateway", None, &[Permission::VerifyApiKeys]);
    let body = json!({"key": key["secret"]});
    let verify = || {
        p.call(
            &p.keys,
            Method::POST,
            "/v1/keys/verify",
            Some(&gateway),
            Some(body.clone()),
            &[("Idempotency-Key", "verify-1")],
        )
    };
    let (s, h, v) = verify().await;
    assert_eq!((s, v["valid"].as_bool()), (StatusCode::OK, Some(true)));
    assert!(h.get("idempotent-replayed").is_none());
    let (s, _, _) = p
        .call(
            &p.keys,
            Method::POST,
            &format!("{keys}/{}/revoke", key["key"]["id"].as_str().unwrap()),
            Some(&owner),
            None,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // Revocation reaches the verification cache within milliseconds; a replay would answer
    // `valid: true` for 24 hours.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let (s, h, v) = verify().await;
        assert_eq!(s, StatusCode::OK);
        assert!(h.get("idempotent-replayed").is_none());
        if v["valid"] == false {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a revoked key still verifies: {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Nothing of a verification, secret or hash, is stored.
    assert_eq!(records(&p.keys_db).await, 0);
}

#[tokio::test]
async fn a_replay_needs_the_access_of_the_first_request() {
    let p = Platform::start("audit-idem-authz").await;
    let (cid, _) = p.customer("replayer", TENANT_ALL).await;
    let path = format!("/v1/customers/{cid}/clients");
    let body = json!({"type": "business", "name": "Globex"});
    let editor = testkit::token(
        "alice",
        Some(cid),
        &[Permission::EditClient, Permission::ViewClient],
    );
    let create = |token: String| {
        let (path, body) = (path.clone(), body.clone());
        let p = &p;
        async move {
            p.call(
                &p.customers,
                Method::POST,
                &path,
                Some(&token),
                Some(body),
                &[("Idempotency-Key", "k-1")],
            )
            .await
        }
    };
    let (s, _, first) = create(editor.clone()).await;
    assert_eq!(s, StatusCode::CREATED);

    // The same sub and customer without the permission: the handler's own 403.
    let viewer = testkit::token("alice", Some(cid), &[Permission::ViewClient]);
    assert_problem(&create(viewer).await, StatusCode::FORBIDDEN, "FORBIDDEN");
    // Bound to a client: refused as such, never the stored 201.
    let bound = testkit::client_token(
        "alice",
        cid,
        first["id"].as_str().unwrap().parse().unwrap(),
        &[Permission::EditClient, Permission::ViewClient],
    );
    assert_problem(&create(bound).await, StatusCode::FORBIDDEN, "FORBIDDEN");
    // Authorized, but with other access than the first request: 409, nothing created.
    let wider = testkit::token(
        "alice",
        Some(cid),
        &[
            Permission::EditClient,
            Permission::ViewClient,
            Permission::EditCustomer,
        ],
    );
    assert_problem(
        &create(wider).await,
        StatusCode::CONFLICT,
        "IDEMPOTENCY_KEY_REUSED",
    );
    // The same caller gets the stored answer.
    let (s, h, again) = create(editor.clone()).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(h["idempotent-replayed"], "true");
    assert_eq!(again["id"], first["id"]);
    let (_, _, list) = p
        .call(&p.customers, Method::GET, &path, Some(&editor), None, &[])
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn authentication_comes_before_the_idempotency_key() {
    let p = Platform::start("audit-idem-authn").await;
    let (cid, owner) = p.customer("authn", TENANT_ALL).await;
    let client = p.client(cid, &owner, "Initech").await;
    let client_path = format!(
        "/v1/customers/{cid}/clients/{}",
        client["id"].as_str().unwrap()
    );
    for (path, body) in [
        ("/v1/customers".to_string(), json!({"name": "x"})),
        (
            format!("/v1/customers/{cid}/clients"),
            json!({"type": "business"}),
        ),
        (format!("{client_path}/provision"), json!({})),
        (format!("{client_path}/purchases"), json!({})),
    ] {
        for token in [None, Some("not-a-token")] {
            let answer = p
                .call(
                    &p.customers,
                    Method::POST,
                    &path,
                    token,
                    Some(body.clone()),
                    &[("Idempotency-Key", " ")],
                )
                .await;
            assert_problem(&answer, StatusCode::UNAUTHORIZED, "NOT_AUTHORIZED");
        }
    }
    // With a valid token, the header itself is checked: 1 to 255 visible ASCII characters, as
    // the document's pattern says (no blank, no inner space, no tab).
    let long = "k".repeat(256);
    for key in [" ", "two words", "tab\tbed", long.as_str()] {
        let answer = p
            .call(
                &p.customers,
                Method::POST,
                &format!("/v1/customers/{cid}/clients"),
                Some(&owner),
                Some(json!({"type": "business", "name": "Hooli"})),
                &[("Idempotency-Key", key)],
            )
            .await;
        assert_invalid(&answer, "Idempotency-Key");
    }
}

#[tokio::test]
async fn an_answer_is_stored_only_with_its_change_and_concurrent_retries_apply_once() {
    let p = Platform::start("audit-idem-tx").await;
    let (cid, owner) = p.customer("atomic", TENANT_ALL).await;
    let path = format!("/v1/customers/{cid}/clients");

    // A refused request stores nothing: its retry runs again.
    let bad = p
        .call(
            &p.customers,
            Method::POST,
            &path,
            Some(&owner),
            Some(json!({"type": "business"})),
            &[("Idempotency-Key", "retry-me")],
        )
        .await;
    assert_invalid(&bad, "name");
    assert_eq!(records(&p.customers_db).await, 0);

    // Eight concurrent requests with one key: one client, one answer, no 409 "in progress".
    let body = json!({"type": "business", "name": "Umbrella"});
    let answers = futures_util::future::join_all((0..8).map(|_| {
        p.call(
            &p.customers,
            Method::POST,
            &path,
            Some(&owner),
            Some(body.clone()),
            &[("Idempotency-Key", "burst")],
        )
    }))
    .await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(s, _, c)| {
            assert_eq!(*s, StatusCode::CREATED, "{c}");
            c["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    assert_eq!(
        answers
            .iter()
            .filter(|(_, h, _)| h.get("idempotent-replayed").is_none())
            .count(),
        1
    );
    let (_, _, list) = p
        .call(&p.customers, Method::GET, &path, Some(&owner), None, &[])
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    // Key creation refuses the header (its answer holds the secret), and stores nothing.
    let keys = p.keys_path(cid, &owner).await;
    for _ in 0..2 {
        let answer = p
            .call(
                &p.keys,
                Method::POST,
                &keys,
                Some(&owner),
                Some(json!({"name": "k", "kind": "admin"})),
                &[("Idempotency-Key", "key-1")],
            )
            .await;
        assert_invalid(&answer, "Idempotency-Key");
        assert!(answer.1.get("idempotent-replayed").is_none());
    }

    // The records are tenant rows: another tenant's scope sees none of them.
    use sqlx::Row;
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&p.customers_db.app_url)
        .await
        .unwrap();
    let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
    shared_model::db::set_scope(
        &mut tx,
        shared_model::db::Scope::Tenant(shared_model::ids::CustomerId::new()),
    )
    .await
    .unwrap();
    let visible: i64 = sqlx::query("SELECT count(*) FROM idempotency_records")
        .fetch_one(&mut *tx)
        .await
        .unwrap()
        .get(0);
    assert_eq!(visible, 0);
    shared_model::db::set_scope(&mut tx, shared_model::db::Scope::Tenant(cid))
        .await
        .unwrap();
    let own: i64 = sqlx::query("SELECT count(*) FROM idempotency_records")
        .fetch_one(&mut *tx)
        .await
        .unwrap()
        .get(0);
    assert_eq!(own, 1);
}
