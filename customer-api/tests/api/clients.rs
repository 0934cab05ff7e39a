use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fixtures::{acme_client, person, send, tenant_setup};
use crate::{Ctx, invalid, ok, problem};

#[tokio::test]
async fn create_get_update_delete_with_events() {
    let ctx = Ctx::new().await;
    let (cid, t, path) = tenant_setup(&ctx, "cl-crud").await;

    let res = send(&ctx, Method::POST, &path, &t, Some(acme_client())).await;
    assert_eq!(res.headers()["etag"], "\"1\"");
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    let c = ok(res, StatusCode::CREATED).await;
    let id = c["id"].as_str().unwrap();
    assert_eq!(loc, format!("{path}/{id}"));
    assert_eq!(c["customerId"], cid);
    assert_eq!(c["status"], "active");
    assert_eq!(c["source"], "referral");
    assert_eq!(
        c["businessProfile"]["industrySector"],
        "information_technology"
    );
    assert_eq!(c["disabled"], false);
    assert_eq!(c["tags"], json!([]));
    assert_eq!(c["revenue"], Value::Null);

    let got = ok(
        send(&ctx, Method::GET, &loc, &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(got, c);

    // Individuals get their name from first and last name.
    let p = ok(
        send(
            &ctx,
            Method::POST,
            &path,
            &t,
            Some(person("Ada", "Lovelace")),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(p["name"], "Ada Lovelace");
    assert_eq!(p["status"], "lead");

    // Merge patch with If-Match.
    let stale = ctx
        .req(Method::PATCH, &loc, Some(&t))
        .header("if-match", "\"7\"")
        .json(&json!({"assignee": "user-8"}))
        .send()
        .await
        .unwrap();
    problem(
        stale,
        StatusCode::PRECONDITION_FAILED,
        "PRECONDITION_FAILED",
    )
    .await;
    let res = ctx
        .req(Method::PATCH, &loc, Some(&t))
        .header("if-match", "\"1\"")
        .json(&json!({"assignee": null, "status": "inactive", "email": "ap@globex.example"}))
        .send()
        .await
        .unwrap();
    let u = ok(res, StatusCode::OK).await;
    assert_eq!(u["version"], 2);
    assert_eq!(u["assignee"], Value::Null);
    assert_eq!(u["status"], "inactive");
    assert_eq!(u["name"], "Globex");

    let res = send(&ctx, Method::DELETE, &loc, &t, None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    problem(
        send(&ctx, Method::GET, &loc, &t, None).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;

    let events: Vec<(String, Value)> = ctx
        .events()
        .await
        .into_iter()
        .filter(|(k, _)| k.starts_with("client."))
        .collect();
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "client.created",
            "client.created",
            "client.updated",
            "client.deleted"
        ]
    );
    let upd = &events[2].1;
    assert_eq!(upd["subject"], id);
    assert_eq!(upd["customerid"], cid);
    assert_eq!(upd["data"]["version"], 2);
    let mut changed: Vec<&str> = upd["data"]["changedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    changed.sort();
    assert_eq!(changed, ["assignee", "email", "status"]);
    assert_eq!(events[3].1["data"]["version"], 3);
}

#[tokio::test]
async fn invalid_clients_are_422_naming_the_field_and_write_nothing() {
    let ctx = Ctx::new().await;
    let (_, t, path) = tenant_setup(&ctx, "cl-invalid").await;
    for (body, field) in [
        (json!({"type": "business"}), "name"),
        (json!({"type": "individual", "lastName": "X"}), "firstName"),
        (
            json!({"type": "individual", "firstName": "A", "lastName": "B", "businessProfile": {}}),
            "businessProfile",
        ),
        (
            json!({"type": "business", "name": "A", "firstName": "x"}),
            "firstName",
        ),
        (json!({"type": "business", "name": " "}), "name"),
        (
            json!({"type": "business", "name": "A", "email": "nope"}),
            "email",
        ),
        (
            json!({"type": "business", "name": "A", "status": "vip"}),
            "status",
        ),
        (
            json!({"type": "business", "name": "A", "colour": "red"}),
            "colour",
        ),
        (
            json!({"type": "business", "name": "A", "tags": ["missing"]}),
            "tags[0]",
        ),
        (
            json!({"type": "business", "name": "A", "businessProfile": {"industrySector": "energy", "industryGroup": "banks"}}),
            "businessProfile.industryGroup",
        ),
    ] {
        invalid(send(&ctx, Method::POST, &path, &t, Some(body)).await, field).await;
    }
    let listed = ok(
        send(&ctx, Method::GET, &path, &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["items"], json!([]));
    assert!(
        !ctx.events()
            .await
            .iter()
            .any(|(k, _)| k.starts_with("client."))
    );

    let c = ok(
        send(&ctx, Method::POST, &path, &t, Some(acme_client())).await,
        StatusCode::CREATED,
    )
    .await;
    let loc = format!("{path}/{}", c["id"].as_str().unwrap());
    invalid(
        send(
            &ctx,
            Method::PATCH,
            &loc,
            &t,
            Some(json!({"type": "individual"})),
        )
        .await,
        "type",
    )
    .await;
    invalid(
        send(
            &ctx,
            Method::PATCH,
            &loc,
            &t,
            Some(json!({"externalId": ""})),
        )
        .await,
        "externalId",
    )
    .await;
    // The same external id twice is a conflict.
    let dup = send(&ctx, Method::POST, &path, &t, Some(acme_client())).await;
    problem(dup, StatusCode::CONFLICT, "CONFLICT").await;
}

#[tokio::test]
async fn list_filters_and_pages() {
    let ctx = Ctx::new().await;
    let (_, t, path) = tenant_setup(&ctx, "cl-list").await;
    let tags = format!("{}/tags", path.trim_end_matches("/clients"));
    ok(
        send(&ctx, Method::POST, &tags, &t, Some(json!({"name": "VIP"}))).await,
        StatusCode::CREATED,
    )
    .await;
    for i in 0..5 {
        ok(
            send(&ctx, Method::POST, &path, &t, Some(json!({
                "type": "business", "name": format!("Shop {i}"), "email": format!("s{i}@shops.example"),
                "status": if i % 2 == 0 { "active" } else { "lead" },
                "assignee": if i < 2 { "alice" } else { "bob" },
                "tags": if i == 4 { json!(["vip"]) } else { json!([]) },
            }))).await,
            StatusCode::CREATED,
        )
        .await;
    }
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    let all = ok(
        send(&ctx, Method::GET, &path, &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        names(&all),
        ["Shop 4", "Shop 3", "Shop 2", "Shop 1", "Shop 0"]
    );
    let leads = ok(
        send(&ctx, Method::GET, &format!("{path}?status=lead"), &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(names(&leads), ["Shop 3", "Shop 1"]);
    let alice = ok(
        send(
            &ctx,
            Method::GET,
            &format!("{path}?assignee=alice"),
            &t,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(names(&alice), ["Shop 1", "Shop 0"]);
    let vip = ok(
        send(&ctx, Method::GET, &format!("{path}?tag=VIP"), &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(names(&vip), ["Shop 4"]);
    assert_eq!(vip["items"][0]["tags"], json!(["VIP"]));
    let text = ok(
        send(&ctx, Method::GET, &format!("{path}?q=S2%40SHOPS"), &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(names(&text), ["Shop 2"]);

    let p1 = ok(
        send(&ctx, Method::GET, &format!("{path}?limit=2"), &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(names(&p1), ["Shop 4", "Shop 3"]);
    let cursor = p1["nextCursor"].as_str().unwrap();
    let p2 = ok(
        send(
            &ctx,
            Method::GET,
            &format!("{path}?limit=2&cursor={cursor}"),
            &t,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(names(&p2), ["Shop 2", "Shop 1"]);

    for (query, field) in [
        ("limit=0", "limit"),
        ("status=vip", "status"),
        ("cursor=zz", "cursor"),
        ("updatedSince=yesterday", "updatedSince"),
        ("group=nope", "group"),
    ] {
        invalid(
            send(&ctx, Method::GET, &format!("{path}?{query}"), &t, None).await,
            field,
        )
        .await;
    }
}

#[tokio::test]
async fn deactivated_customers_are_readable_but_refuse_writes() {
    let ctx = Ctx::new().await;
    let (cid, t, path) = tenant_setup(&ctx, "cl-deact").await;
    let c = ok(
        send(&ctx, Method::POST, &path, &t, Some(acme_client())).await,
        StatusCode::CREATED,
    )
    .await;
    let loc = format!("{path}/{}", c["id"].as_str().unwrap());
    let mut su = ctx.db.superuser().await;
    sqlx::query("UPDATE customers SET status = 'deactivated' WHERE customer_id = $1::uuid")
        .bind(&cid)
        .execute(&mut su)
        .await
        .unwrap();
    ok(
        send(&ctx, Method::GET, &loc, &t, None).await,
        StatusCode::OK,
    )
    .await;
    ok(
        send(&ctx, Method::GET, &path, &t, None).await,
        StatusCode::OK,
    )
    .await;
    problem(
        send(
            &ctx,
            Method::PATCH,
            &loc,
            &t,
            Some(json!({"assignee": "x"})),
        )
        .await,
        StatusCode::CONFLICT,
        "CUSTOMER_DEACTIVATED",
    )
    .await;
    problem(
        send(
            &ctx,
            Method::POST,
            &path,
            &t,
            Some(json!({"type": "business", "name": "New"})),
        )
        .await,
        StatusCode::CONFLICT,
        "CUSTOMER_DEACTIVATED",
    )
    .await;
}

#[tokio::test]
async fn idempotent_create_replays() {
    let ctx = Ctx::new().await;
    let (_, t, path) = tenant_setup(&ctx, "cl-idem").await;
    let first = ctx
        .req(Method::POST, &path, Some(&t))
        .header("idempotency-key", "k-1")
        .json(&acme_client())
        .send()
        .await
        .unwrap();
    let first = ok(first, StatusCode::CREATED).await;
    let again = ctx
        .req(Method::POST, &path, Some(&t))
        .header("idempotency-key", "k-1")
        .json(&acme_client())
        .send()
        .await
        .unwrap();
    let again = ok(again, StatusCode::CREATED).await;
    assert_eq!(first, again);
    let other = ctx
        .req(Method::POST, &path, Some(&t))
        .header("idempotency-key", "k-1")
        .json(&json!({"type": "business", "name": "Else"}))
        .send()
        .await
        .unwrap();
    problem(other, StatusCode::CONFLICT, "IDEMPOTENCY_KEY_REUSED").await;
    let listed = ok(
        send(&ctx, Method::GET, &path, &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}
