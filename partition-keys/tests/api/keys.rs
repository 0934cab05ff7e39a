use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::testkit::{self, TestApp};

use crate::{Ctx, gateway, invalid, ok, problem, verify_on};

#[tokio::test]
async fn keys_are_shown_once_verify_and_never_leak() {
    let ctx = Ctx::new().await;
    let (cid, t) = ctx.customer("active").await;
    let keys = ctx.partition(&cid, &t, "Live", "prod").await;

    let issued = ok(
        ctx.send(
            Method::POST,
            &keys,
            &t,
            Some(json!({"name": "backend", "kind": "admin", "foreignKey": "erp-7"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let secret = issued["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("cpk_prod_"));
    let key = &issued["key"];
    assert_eq!(key["scopes"], json!(["*:read", "*:write"]));
    assert_eq!(key["status"], "active");
    assert!(secret.starts_with(key["prefix"].as_str().unwrap()));
    let kloc = format!("{keys}/{}", key["id"].as_str().unwrap());

    // Shown once: reads never carry the secret or a hash.
    for body in [
        ok(ctx.send(Method::GET, &kloc, &t, None).await, StatusCode::OK).await,
        ok(ctx.send(Method::GET, &keys, &t, None).await, StatusCode::OK).await,
    ] {
        let text = body.to_string();
        assert!(!text.contains(&secret[9..]), "{text}");
        assert!(!text.contains("hash"), "{text}");
    }

    let v = ctx.verify(&secret).await;
    assert_eq!(v["valid"], true);
    assert_eq!(v["customerId"], cid);
    assert_eq!(v["environment"], "prod");
    assert_eq!(v["scopes"], json!(["*:read", "*:write"]));

    // Malformed, truncated, altered and unknown keys are refused alike.
    let mut altered = secret.clone().into_bytes();
    altered[15] = if altered[15] == b'a' { b'b' } else { b'a' };
    let (unknown, _) = partition_keys::keys::secret::generate("prod");
    for bad in [
        &secret[..secret.len() - 1],
        "nonsense",
        std::str::from_utf8(&altered).unwrap(),
        unknown.as_str(),
        "",
    ] {
        assert_eq!(ctx.verify(bad).await, json!({"valid": false}), "{bad}");
    }

    // lastUsedAt is written in the background.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let k = ok(ctx.send(Method::GET, &kloc, &t, None).await, StatusCode::OK).await;
        if k["lastUsedAt"].is_string() {
            break;
        }
        assert!(Instant::now() < deadline, "lastUsedAt never written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Idempotency-Key is refused where a secret is shown: a replay would need it stored.
    let res = ctx
        .req(Method::POST, &keys, Some(&t))
        .header("idempotency-key", "create-once")
        .json(&json!({"name": "again", "kind": "admin"}))
        .send()
        .await
        .unwrap();
    invalid(res, "Idempotency-Key").await;
    let res = ctx
        .req(Method::POST, &format!("{kloc}/rotate"), Some(&t))
        .header("idempotency-key", "rotate-once")
        .json(&json!({"overlapSeconds": 0}))
        .send()
        .await
        .unwrap();
    invalid(res, "Idempotency-Key").await;

    // The plaintext appears in no table.
    let mut su = ctx.db.superuser().await;
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
            .fetch_all(&mut su)
            .await
            .unwrap();
    let body = &secret[9..];
    for table in tables {
        let hits: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} t WHERE t::text LIKE '%' || $1 || '%'
                OR encode(convert_to(t::text, 'UTF8'), 'escape') LIKE '%' || $1 || '%'"
        )))
        .bind(body)
        .fetch_one(&mut su)
        .await
        .unwrap();
        assert_eq!(hits, 0, "the secret is in {table}");
    }
    // Nor in the outbox payloads (bytea).
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM outbox")
        .fetch_all(&mut su)
        .await
        .unwrap();
    assert!(!payloads.is_empty());
    for p in payloads {
        assert!(!String::from_utf8_lossy(&p).contains(body));
    }
    let kinds: Vec<String> = ctx.outbox().await.into_iter().map(|(k, _)| k).collect();
    assert!(kinds.contains(&"apikey.created".to_string()));
}

#[tokio::test]
async fn custom_scopes_ttl_and_validation() {
    let ctx = Ctx::new().await;
    let (cid, t) = ctx.customer("active").await;
    let keys = ctx.partition(&cid, &t, "Dev", "dev").await;
    for (body, field) in [
        (json!({"name": "x", "kind": "custom"}), "scopes"),
        (
            json!({"name": "x", "kind": "custom", "scopes": ["clients:delete"]}),
            "scopes[0]",
        ),
        (
            json!({"name": "x", "kind": "custom", "scopes": ["planets:read"]}),
            "scopes[0]",
        ),
        (
            json!({"name": "x", "kind": "custom", "scopes": ["clients:read", "clients:read"]}),
            "scopes[1]",
        ),
        (
            json!({"name": "x", "kind": "admin", "scopes": ["clients:read"]}),
            "scopes",
        ),
        (json!({"name": "x", "kind": "root"}), "kind"),
        (
            json!({"name": "x", "kind": "admin", "ttlSeconds": 5}),
            "ttlSeconds",
        ),
        (
            json!({"name": "x", "kind": "admin", "expiresAt": "2020-01-01T00:00:00Z"}),
            "expiresAt",
        ),
        (
            json!({"name": "x", "kind": "admin", "ttlSeconds": 600, "expiresAt": "2099-01-01T00:00:00Z"}),
            "ttlSeconds",
        ),
        (json!({"name": "", "kind": "admin"}), "name"),
    ] {
        invalid(ctx.send(Method::POST, &keys, &t, Some(body)).await, field).await;
    }
    let custom = ok(ctx.send(Method::POST, &keys, &t, Some(json!({"name": "reader", "kind": "custom", "scopes": ["clients:read", "search:read"], "ttlSeconds": 3600}))).await, StatusCode::CREATED).await;
    let v = ctx.verify(custom["secret"].as_str().unwrap()).await;
    assert_eq!(v["scopes"], json!(["clients:read", "search:read"]));
    assert!(v["expiresAt"].is_string());

    // A key whose expiry passes stops verifying and is announced as expired, once.
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::milliseconds(1500))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let short = ok(
        ctx.send(
            Method::POST,
            &keys,
            &t,
            Some(json!({"name": "short", "kind": "admin", "expiresAt": soon})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let secret = short["secret"].as_str().unwrap();
    assert_eq!(ctx.verify(secret).await["valid"], true);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(ctx.verify(secret).await, json!({"valid": false}));
    let kloc = format!("{keys}/{}", short["key"]["id"].as_str().unwrap());
    assert_eq!(
        ok(ctx.send(Method::GET, &kloc, &t, None).await, StatusCode::OK).await["status"],
        "expired"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let expired: Vec<Value> = ctx
        .outbox()
        .await
        .into_iter()
        .filter(|(k, _)| k == "apikey.expired")
        .map(|(_, e)| e)
        .collect();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0]["subject"], short["key"]["id"]);
    // The expiry job's run is a trace of its own.
    let tp = expired[0]["traceparent"].as_str().unwrap_or_default();
    assert!(
        shared_model::telemetry::TraceContext::parse(tp).is_some(),
        "{}",
        expired[0]
    );
}

#[tokio::test]
async fn rotation_overlap_and_revocation_reach_a_second_process_within_a_second() {
    let ctx = Ctx::new().await;
    let second = TestApp::spawn(&partition_keys::SERVICE, ctx.cfg.clone()).await;
    let (cid, t) = ctx.customer("active").await;
    let keys = ctx.partition(&cid, &t, "Live", "prod").await;
    let first = ok(
        ctx.send(
            Method::POST,
            &keys,
            &t,
            Some(json!({"name": "svc", "kind": "custom", "scopes": ["events:read"]})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let old_secret = first["secret"].as_str().unwrap().to_string();
    let kloc = format!("{keys}/{}", first["key"]["id"].as_str().unwrap());

    invalid(
        ctx.send(
            Method::POST,
            &format!("{kloc}/rotate"),
            &t,
            Some(json!({"overlapSeconds": -1})),
        )
        .await,
        "overlapSeconds",
    )
    .await;
    let rotated = ok(
        ctx.send(
            Method::POST,
            &format!("{kloc}/rotate"),
            &t,
            Some(json!({"overlapSeconds": 2})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    assert_eq!(rotated["key"]["rotatedFrom"], first["key"]["id"]);
    assert_eq!(rotated["key"]["scopes"], json!(["events:read"]));
    assert!(rotated["previous"]["expiresAt"].is_string());
    // Both work during the overlap, only the new one after it.
    assert_eq!(verify_on(&second, &old_secret).await["valid"], true);
    assert_eq!(verify_on(&second, &new_secret).await["valid"], true);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(verify_on(&second, &old_secret).await["valid"], false);
    assert_eq!(ctx.verify(&old_secret).await["valid"], false);
    problem(
        ctx.send(
            Method::POST,
            &format!("{kloc}/rotate"),
            &t,
            Some(json!({"overlapSeconds": 0})),
        )
        .await,
        StatusCode::CONFLICT,
        "KEY_NOT_ACTIVE",
    )
    .await;

    // Revocation on one process is seen by the other (its cache warm) within a second.
    let new_loc = format!("{keys}/{}", rotated["key"]["id"].as_str().unwrap());
    assert_eq!(verify_on(&second, &new_secret).await["valid"], true);
    let revoked_at = Instant::now();
    let r = ok(
        ctx.send(Method::POST, &format!("{new_loc}/revoke"), &t, None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(r["status"], "revoked");
    loop {
        if verify_on(&second, &new_secret).await["valid"] == false {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_millis(1000),
            "revocation not seen within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "revocation visible on the second process after {:?}",
        revoked_at.elapsed()
    );
    let kinds: Vec<String> = ctx.outbox().await.into_iter().map(|(k, _)| k).collect();
    for k in ["apikey.created", "apikey.rotated", "apikey.revoked"] {
        assert!(kinds.contains(&k.to_string()), "{k} missing from {kinds:?}");
    }
    second.stop().await;
}

#[tokio::test]
async fn keys_authorization() {
    let ctx = Ctx::new().await;
    let (cid, t) = ctx.customer("active").await;
    let (_, other) = ctx.customer("active").await;
    let keys = ctx.partition(&cid, &t, "Live", "prod").await;
    let issued = ok(
        ctx.send(
            Method::POST,
            &keys,
            &t,
            Some(json!({"name": "k", "kind": "admin"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    problem(
        ctx.req(Method::GET, &keys, None).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "NOT_AUTHORIZED",
    )
    .await;
    problem(
        ctx.send(Method::GET, &keys, &other, None).await,
        StatusCode::BAD_REQUEST,
        "KEY_MISMATCH",
    )
    .await;
    let no_perm = testkit::token("x", Some(cid.parse().unwrap()), &[Permission::ViewCustomer]);
    problem(
        ctx.send(
            Method::POST,
            &keys,
            &no_perm,
            Some(json!({"name": "k", "kind": "admin"})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    // Verification needs VerifyApiKeys.
    let body = json!({"key": issued["secret"]});
    problem(
        ctx.send(Method::POST, "/v1/keys/verify", &t, Some(body.clone()))
            .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    problem(
        ctx.req(Method::POST, "/v1/keys/verify", None)
            .json(&body)
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "NOT_AUTHORIZED",
    )
    .await;
    invalid(
        ctx.send(
            Method::POST,
            "/v1/keys/verify",
            &gateway(),
            Some(json!({"token": "x"})),
        )
        .await,
        "token",
    )
    .await;
}

/// Waits until `key` stops verifying on `app`, failing after `limit`; returns how long it took.
async fn refused_within(app: &TestApp, key: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    while verify_on(app, key).await["valid"] != false {
        assert!(start.elapsed() < limit, "still valid after {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn the_cache_follows_every_write_and_a_broken_feed_empties_it() {
    let ctx = Ctx::new().await;
    let (cid, t) = ctx.customer("active").await;
    let keys = ctx.partition(&cid, &t, "Live", "prod").await;
    let mut secrets = Vec::new();
    for name in ["one", "two", "three"] {
        let k = ok(
            ctx.send(
                Method::POST,
                &keys,
                &t,
                Some(json!({"name": name, "kind": "admin"})),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        secrets.push(k["secret"].as_str().unwrap().to_string());
    }
    for s in &secrets {
        assert_eq!(ctx.verify(s).await["valid"], true, "cache warm");
    }
    let mut su = ctx.db.superuser().await;

    // A write that bypasses the service (here: SQL by hand) still reaches the cache, through
    // the table's trigger, well within the 1 s bound.
    let hash = partition_keys::keys::secret::hash(crate::PEPPER.as_bytes(), &secrets[0]);
    sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1")
        .bind(&hash)
        .execute(&mut su)
        .await
        .unwrap();
    let took = refused_within(&ctx.app, &secrets[0], Duration::from_millis(1000)).await;
    println!("revocation by SQL refused after {took:?}");
    assert_eq!(ctx.verify(&secrets[1]).await["valid"], true);

    // A change whose notification is lost: the feed's connection is cut and the write sends
    // none (its trigger is disabled for that transaction). The reconnected feed empties the
    // cache, so the key is refused within the bound all the same.
    let hash = partition_keys::keys::secret::hash(crate::PEPPER.as_bytes(), &secrets[1]);
    let cut: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
          WHERE datname = current_database() AND query = 'LISTEN \"key_cache\"'",
    )
    .fetch_one(&mut su)
    .await
    .unwrap();
    assert_eq!(cut, 1, "one feed connection");
    sqlx::raw_sql(
        "BEGIN;
         ALTER TABLE api_keys DISABLE TRIGGER api_keys_key_cache_update;",
    )
    .execute(&mut su)
    .await
    .unwrap();
    sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1")
        .bind(&hash)
        .execute(&mut su)
        .await
        .unwrap();
    sqlx::raw_sql(
        "ALTER TABLE api_keys ENABLE TRIGGER api_keys_key_cache_update;
         COMMIT;",
    )
    .execute(&mut su)
    .await
    .unwrap();
    let took = refused_within(&ctx.app, &secrets[1], Duration::from_millis(1000)).await;
    println!("revocation with a lost notification refused after {took:?}");

    // The feed is back: a disabled partition (a partition-level notification) reaches it.
    let partition = keys.trim_end_matches("/keys").to_string();
    let reconnected = Instant::now();
    loop {
        let listening: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND query = 'LISTEN \"key_cache\"'",
        )
        .fetch_one(&mut su)
        .await
        .unwrap();
        if listening == 1 {
            break;
        }
        assert!(
            reconnected.elapsed() < Duration::from_secs(5),
            "feed not back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ctx.verify(&secrets[2]).await["valid"], true);
    ok(
        ctx.send(
            Method::PATCH,
            &partition,
            &t,
            Some(json!({"status": "disabled"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    refused_within(&ctx.app, &secrets[2], Duration::from_millis(1000)).await;
}
