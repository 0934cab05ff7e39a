use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::ids::{ClientId, CustomerId};
use shared_model::testkit;

use crate::{Ctx, consumer, invalid, ok, problem};

pub const CLIENT_PERMS: &[Permission] = &[
    Permission::ViewCustomer,
    Permission::EditCustomer,
    Permission::ViewClient,
    Permission::EditClient,
];

/// A customer, a token for it with client permissions, and its clients path.
pub async fn tenant_setup(ctx: &Ctx, key: &str) -> (String, String, String) {
    let c = ctx.create(consumer(key, "Tenant")).await;
    let id = c["id"].as_str().unwrap().to_string();
    let token = testkit::token("editor", Some(id.parse().unwrap()), CLIENT_PERMS);
    let path = format!("/v1/customers/{id}/clients");
    (id, token, path)
}

pub async fn send(
    ctx: &Ctx,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let r = ctx.req(method, path, Some(token));
    match body {
        Some(b) => r.json(&b),
        None => r,
    }
    .send()
    .await
    .unwrap()
}

pub fn acme_client() -> Value {
    json!({
        "type": "business",
        "name": "Globex",
        "email": "buyer@globex.example",
        "externalId": "erp-1",
        "businessProfile": {"industryGroup": "software_services"},
        "source": "referral",
        "assignee": "user-7"
    })
}

fn person(first: &str, last: &str) -> Value {
    json!({"type": "individual", "firstName": first, "lastName": last, "status": "lead"})
}

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
async fn authorization_rules() {
    let ctx = Ctx::new().await;
    let (cid, t, path) = tenant_setup(&ctx, "cl-auth").await;
    let (_, other_t, other_path) = tenant_setup(&ctx, "cl-auth-other").await;
    let c = ok(
        send(&ctx, Method::POST, &path, &t, Some(acme_client())).await,
        StatusCode::CREATED,
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    let loc = format!("{path}/{id}");

    // No token.
    let res = ctx.req(Method::GET, &loc, None).send().await.unwrap();
    problem(res, StatusCode::UNAUTHORIZED, "NOT_AUTHORIZED").await;
    // Missing permission: a viewer cannot edit, a customer-only token cannot read clients.
    let viewer = testkit::token("v", Some(cid.parse().unwrap()), &[Permission::ViewClient]);
    ok(
        send(&ctx, Method::GET, &loc, &viewer, None).await,
        StatusCode::OK,
    )
    .await;
    problem(
        send(
            &ctx,
            Method::PATCH,
            &loc,
            &viewer,
            Some(json!({"assignee": "x"})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    let no_client = ctx.tenant(&cid);
    problem(
        send(&ctx, Method::GET, &path, &no_client, None).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    // Another tenant's token: KEY_MISMATCH on this tenant's paths, and its own paths hold nothing.
    problem(
        send(&ctx, Method::GET, &loc, &other_t, None).await,
        StatusCode::BAD_REQUEST,
        "KEY_MISMATCH",
    )
    .await;
    problem(
        send(&ctx, Method::GET, &path, &other_t, None).await,
        StatusCode::BAD_REQUEST,
        "KEY_MISMATCH",
    )
    .await;
    let foreign = format!("{other_path}/{id}");
    problem(
        send(&ctx, Method::GET, &foreign, &other_t, None).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    problem(
        send(
            &ctx,
            Method::PATCH,
            &foreign,
            &other_t,
            Some(json!({"assignee": "x"})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    problem(
        send(&ctx, Method::DELETE, &foreign, &other_t, None).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let theirs = ok(
        send(&ctx, Method::GET, &other_path, &other_t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(theirs["items"], json!([]));

    // A platform admin reaches every tenant's clients.
    ok(
        send(&ctx, Method::GET, &loc, &ctx.admin(), None).await,
        StatusCode::OK,
    )
    .await;

    // A client-bound token reaches only its own client.
    let second = ok(
        send(
            &ctx,
            Method::POST,
            &path,
            &t,
            Some(json!({"type": "business", "name": "Initech"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let bound = testkit::client_token(
        "portal-user",
        cid.parse::<CustomerId>().unwrap(),
        id.parse::<ClientId>().unwrap(),
        CLIENT_PERMS,
    );
    ok(
        send(&ctx, Method::GET, &loc, &bound, None).await,
        StatusCode::OK,
    )
    .await;
    let second_loc = format!("{path}/{}", second["id"].as_str().unwrap());
    problem(
        send(&ctx, Method::GET, &second_loc, &bound, None).await,
        StatusCode::BAD_REQUEST,
        "KEY_MISMATCH",
    )
    .await;
    let listed = ok(
        send(&ctx, Method::GET, &path, &bound, None).await,
        StatusCode::OK,
    )
    .await;
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()]);
    problem(
        send(&ctx, Method::POST, &path, &bound, Some(acme_client())).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    problem(
        send(&ctx, Method::GET, &format!("{path}/stats"), &bound, None).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    // It edits contact details, not the relationship.
    ok(
        send(
            &ctx,
            Method::PATCH,
            &loc,
            &bound,
            Some(json!({"phone": "+4930123456"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    for body in [
        json!({"status": "churned"}),
        json!({"assignee": "me"}),
        json!({"tags": []}),
    ] {
        problem(
            send(&ctx, Method::PATCH, &loc, &bound, Some(body)).await,
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        )
        .await;
    }
    problem(
        send(
            &ctx,
            Method::POST,
            &format!("{loc}/purchases"),
            &bound,
            Some(json!({"amountMinor": 5, "currency": "EUR"})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    problem(
        send(&ctx, Method::POST, &format!("{loc}/disable"), &bound, None).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
}

#[tokio::test]
async fn purchases_add_up_atomically_in_one_currency_and_feed_stats() {
    let ctx = Ctx::new().await;
    let (_, t, path) = tenant_setup(&ctx, "cl-rev").await;
    let c = ok(
        send(&ctx, Method::POST, &path, &t, Some(acme_client())).await,
        StatusCode::CREATED,
    )
    .await;
    let loc = format!("{path}/{}", c["id"].as_str().unwrap());
    let buy = format!("{loc}/purchases");

    // Concurrent purchases are all counted.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let req = ctx
            .req(Method::POST, &buy, Some(&t))
            .json(&json!({"amountMinor": 1000 + i, "currency": "eur", "purchasedAt": format!("2026-01-0{}T10:00:00Z", i + 1)}));
        tasks.push(tokio::spawn(
            async move { req.send().await.unwrap().status() },
        ));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    let got = ok(
        send(&ctx, Method::GET, &loc, &t, None).await,
        StatusCode::OK,
    )
    .await;
    let r = &got["revenue"];
    assert_eq!(r["currency"], "EUR");
    assert_eq!(r["totalMinor"], 8 * 1000 + 28);
    assert_eq!(r["purchaseCount"], 8);
    assert_eq!(r["firstPurchaseAt"], "2026-01-01T10:00:00Z");
    assert_eq!(r["lastPurchaseAt"], "2026-01-08T10:00:00Z");
    assert_eq!(got["version"], 9);

    invalid(
        send(
            &ctx,
            Method::POST,
            &buy,
            &t,
            Some(json!({"amountMinor": 5, "currency": "USD"})),
        )
        .await,
        "currency",
    )
    .await;
    invalid(
        send(
            &ctx,
            Method::POST,
            &buy,
            &t,
            Some(json!({"amountMinor": 0, "currency": "EUR"})),
        )
        .await,
        "amountMinor",
    )
    .await;
    invalid(
        send(
            &ctx,
            Method::POST,
            &buy,
            &t,
            Some(json!({"amountMinor": 5, "currency": "EURO"})),
        )
        .await,
        "currency",
    )
    .await;
    invalid(
        send(
            &ctx,
            Method::POST,
            &buy,
            &t,
            Some(
                json!({"amountMinor": 5, "currency": "EUR", "purchasedAt": "2099-01-01T00:00:00Z"}),
            ),
        )
        .await,
        "purchasedAt",
    )
    .await;

    // A second client buying in USD, a lead that has bought nothing.
    let other = ok(
        send(
            &ctx,
            Method::POST,
            &path,
            &t,
            Some(json!({"type": "business", "name": "Initech", "source": "partner"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    ok(
        send(
            &ctx,
            Method::POST,
            &format!("{path}/{}/purchases", other["id"].as_str().unwrap()),
            &t,
            Some(json!({"amountMinor": 250, "currency": "USD"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    ok(
        send(
            &ctx,
            Method::POST,
            &path,
            &t,
            Some(person("Grace", "Hopper")),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;

    let stats = ok(
        send(&ctx, Method::GET, &format!("{path}/stats"), &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(stats["total"], 3);
    assert_eq!(
        stats["byStatus"],
        json!({"active": 2, "lead": 1, "inactive": 0, "churned": 0})
    );
    assert_eq!(stats["bySource"]["referral"], 1);
    assert_eq!(stats["bySource"]["partner"], 1);
    assert_eq!(stats["bySource"]["direct"], 1);
    assert_eq!(stats["byType"], json!({"business": 2, "individual": 1}));
    assert_eq!(
        stats["revenue"],
        json!([
            {"currency": "EUR", "totalMinor": 8028, "clients": 1, "purchases": 8},
            {"currency": "USD", "totalMinor": 250, "clients": 1, "purchases": 1}
        ])
    );
}

#[tokio::test]
async fn convert_disable_enable() {
    let ctx = Ctx::new().await;
    let (_, t, path) = tenant_setup(&ctx, "cl-conv").await;
    let lead = ok(
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
    let loc = format!("{path}/{}", lead["id"].as_str().unwrap());

    invalid(
        send(
            &ctx,
            Method::POST,
            &format!("{loc}/convert"),
            &t,
            Some(json!({"businessProfile": {}})),
        )
        .await,
        "name",
    )
    .await;
    let conv = ok(
        send(
            &ctx,
            Method::POST,
            &format!("{loc}/convert"),
            &t,
            Some(
                json!({"name": "Analytical Engines Ltd", "businessProfile": {"sizeRange": "1-10"}}),
            ),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(conv["status"], "active");
    assert_eq!(conv["type"], "business");
    assert_eq!(conv["name"], "Analytical Engines Ltd");
    assert_eq!(conv["firstName"], Value::Null);
    problem(
        send(
            &ctx,
            Method::POST,
            &format!("{loc}/convert"),
            &t,
            Some(json!({})),
        )
        .await,
        StatusCode::CONFLICT,
        "NOT_A_LEAD",
    )
    .await;

    let d = ok(
        send(&ctx, Method::POST, &format!("{loc}/disable"), &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(d["disabled"], true);
    // Disabling twice changes nothing.
    let again = ok(
        send(&ctx, Method::POST, &format!("{loc}/disable"), &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(again["version"], d["version"]);
    let e = ok(
        send(&ctx, Method::POST, &format!("{loc}/enable"), &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(e["disabled"], false);

    let kinds: Vec<String> = ctx
        .events()
        .await
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("client."))
        .collect();
    assert_eq!(
        kinds,
        [
            "client.created",
            "client.updated",
            "client.disabled",
            "client.enabled"
        ]
    );
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
