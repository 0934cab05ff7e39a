use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::testkit;

use crate::fixtures::{acme_client, send, tenant_setup};
use crate::ok;
use crate::{Ctx, invalid, problem};

#[tokio::test]
async fn groups_memberships_and_effective_price_list() {
    let ctx = Ctx::new().await;
    let (cid, t, clients) = tenant_setup(&ctx, "groups").await;
    let groups = format!("/v1/customers/{cid}/groups");
    let mk = |name: &str, prio: i32, pl: Option<&str>| json!({"name": name, "priority": prio, "priceListId": pl});
    let retail = ok(
        send(
            &ctx,
            Method::POST,
            &groups,
            &t,
            Some(mk("Retail", 0, Some("pl-retail"))),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let gold = ok(
        send(
            &ctx,
            Method::POST,
            &groups,
            &t,
            Some(mk("Gold", 10, Some("pl-gold"))),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let silver = ok(
        send(
            &ctx,
            Method::POST,
            &groups,
            &t,
            Some(mk("Silver", 10, Some("pl-silver"))),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let news = ok(
        send(
            &ctx,
            Method::POST,
            &groups,
            &t,
            Some(mk("Newsletter", 99, None)),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    problem(
        send(&ctx, Method::POST, &groups, &t, Some(mk("gold", 1, None))).await,
        StatusCode::CONFLICT,
        "CONFLICT",
    )
    .await;
    invalid(
        send(&ctx, Method::POST, &groups, &t, Some(mk("X", 5000, None))).await,
        "priority",
    )
    .await;
    invalid(
        send(
            &ctx,
            Method::POST,
            &groups,
            &t,
            Some(json!({"name": "Y", "priceListId": ""})),
        )
        .await,
        "priceListId",
    )
    .await;

    let c = ok(
        send(&ctx, Method::POST, &clients, &t, Some(acme_client())).await,
        StatusCode::CREATED,
    )
    .await;
    let client_id = c["id"].as_str().unwrap();
    let member = |g: &Value| format!("{groups}/{}/members/{client_id}", g["id"].as_str().unwrap());
    let m = ok(
        send(&ctx, Method::PUT, &member(&retail), &t, None).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(m["assignedBy"], "editor");
    // Putting a member twice returns the existing membership.
    let again = ok(
        send(&ctx, Method::PUT, &member(&retail), &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(again, m);
    ok(
        send(&ctx, Method::PUT, &member(&silver), &t, None).await,
        StatusCode::CREATED,
    )
    .await;
    ok(
        send(&ctx, Method::PUT, &member(&gold), &t, None).await,
        StatusCode::CREATED,
    )
    .await;
    ok(
        send(&ctx, Method::PUT, &member(&news), &t, None).await,
        StatusCode::CREATED,
    )
    .await;

    // Highest priority wins; on a tie the oldest membership (silver before gold); groups without
    // a price list do not count.
    let pricing_path = format!("/internal/v1/customers/{cid}/clients/{client_id}/groups");
    // Internal endpoints answer a service token, not the tenant's own.
    problem(
        send(&ctx, Method::GET, &pricing_path, &t, None).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    let pricing = ok(
        send(&ctx, Method::GET, &pricing_path, &service_token(), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(pricing["effectivePriceListId"], "pl-silver");
    let order: Vec<&str> = pricing["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["Newsletter", "Silver", "Gold", "Retail"]);
    // A platform admin's token is no service token.
    let admin = testkit::token(
        "operator",
        None,
        &[Permission::PlatformAdminViewAllCustomers],
    );
    problem(
        send(&ctx, Method::GET, &pricing_path, &admin, None).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;

    let listed = ok(
        send(
            &ctx,
            Method::GET,
            &format!("{groups}/{}/members", gold["id"].as_str().unwrap()),
            &t,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["items"][0]["clientId"], client_id);
    let g = ok(
        send(
            &ctx,
            Method::GET,
            &format!("{groups}/{}", gold["id"].as_str().unwrap()),
            &t,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(g["memberCount"], 1);
    let filtered = ok(
        send(
            &ctx,
            Method::GET,
            &format!("{clients}?group={}", gold["id"].as_str().unwrap()),
            &t,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);

    // Removing silver makes gold effective; deleting gold falls back to retail.
    let res = send(&ctx, Method::DELETE, &member(&silver), &t, None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    problem(
        send(&ctx, Method::DELETE, &member(&silver), &t, None).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let pricing = ok(
        send(&ctx, Method::GET, &pricing_path, &service_token(), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(pricing["effectivePriceListId"], "pl-gold");
    let res = send(
        &ctx,
        Method::DELETE,
        &format!("{groups}/{}", gold["id"].as_str().unwrap()),
        &t,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let pricing = ok(
        send(&ctx, Method::GET, &pricing_path, &service_token(), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(pricing["effectivePriceListId"], "pl-retail");

    // Patch with If-Match.
    let retail_loc = format!("{groups}/{}", retail["id"].as_str().unwrap());
    let stale = ctx
        .req(Method::PATCH, &retail_loc, Some(&t))
        .header("if-match", "\"5\"")
        .json(&json!({"priority": 50}))
        .send()
        .await
        .unwrap();
    problem(
        stale,
        StatusCode::PRECONDITION_FAILED,
        "PRECONDITION_FAILED",
    )
    .await;
    let p = ok(
        send(
            &ctx,
            Method::PATCH,
            &retail_loc,
            &t,
            Some(json!({"priceListId": null, "description": "Everyone"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(p["priceListId"], Value::Null);
    assert_eq!(p["version"], 2);

    let kinds: Vec<String> = ctx.events().await.into_iter().map(|(k, _)| k).collect();
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!(count("client_group.created"), 4);
    assert_eq!(count("client.group_assigned"), 4);
    // One explicit removal and one through the group's deletion.
    assert_eq!(count("client.group_removed"), 2);
    assert_eq!(count("client_group.deleted"), 1);
    assert_eq!(count("client_group.updated"), 1);
    ctx.assert_updates_name_their_changes().await;
}

#[tokio::test]
async fn groups_authorization_and_snapshot() {
    let ctx = Ctx::new().await;
    let (cid, t, clients) = tenant_setup(&ctx, "groups-auth").await;
    let (_, other, other_clients) = tenant_setup(&ctx, "groups-auth-2").await;
    let groups = format!("/v1/customers/{cid}/groups");
    let g = ok(
        send(
            &ctx,
            Method::POST,
            &groups,
            &t,
            Some(json!({"name": "Gold"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let gloc = format!("{groups}/{}", g["id"].as_str().unwrap());
    problem(
        ctx.req(Method::GET, &gloc, None).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "NOT_AUTHORIZED",
    )
    .await;
    let viewer = testkit::token("v", Some(cid.parse().unwrap()), &[Permission::ViewClient]);
    ok(
        send(&ctx, Method::GET, &gloc, &viewer, None).await,
        StatusCode::OK,
    )
    .await;
    problem(
        send(
            &ctx,
            Method::PATCH,
            &gloc,
            &viewer,
            Some(json!({"priority": 1})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    problem(
        send(&ctx, Method::GET, &gloc, &other, None).await,
        StatusCode::BAD_REQUEST,
        "KEY_MISMATCH",
    )
    .await;
    let members = format!("{gloc}/members");
    ok(
        send(&ctx, Method::GET, &members, &viewer, None).await,
        StatusCode::OK,
    )
    .await;
    problem(
        send(&ctx, Method::GET, &members, &other, None).await,
        StatusCode::BAD_REQUEST,
        "KEY_MISMATCH",
    )
    .await;
    problem(
        ctx.req(Method::GET, &members, None).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "NOT_AUTHORIZED",
    )
    .await;

    // Another tenant's client cannot join this tenant's group.
    let foreign = ok(
        send(
            &ctx,
            Method::POST,
            &other_clients,
            &other,
            Some(acme_client()),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let admin = ctx.admin();
    problem(
        send(
            &ctx,
            Method::PUT,
            &format!("{gloc}/members/{}", foreign["id"].as_str().unwrap()),
            &admin,
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;

    // The snapshot carries the default addresses.
    let c = ok(
        send(&ctx, Method::POST, &clients, &t, Some(acme_client())).await,
        StatusCode::CREATED,
    )
    .await;
    let cloc = format!("{clients}/{}", c["id"].as_str().unwrap());
    let ship = ok(
        send(
            &ctx,
            Method::POST,
            &format!("{cloc}/addresses"),
            &t,
            Some(json!({"lines": ["1 Dock Rd"], "country": "gb", "defaultShipping": true})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let snap_path = format!(
        "/internal/v1/customers/{cid}/clients/{}/snapshot",
        c["id"].as_str().unwrap()
    );
    let snap = ok(
        send(&ctx, Method::GET, &snap_path, &service_token(), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(snap["name"], "Globex");
    assert_eq!(snap["email"], "buyer@globex.example");
    assert_eq!(snap["defaultShippingAddress"]["id"], ship["id"]);
    assert_eq!(snap["defaultBillingAddress"], Value::Null);
    for tenant in [&t, &other] {
        problem(
            send(&ctx, Method::GET, &snap_path, tenant, None).await,
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        )
        .await;
    }
}

/// The token of a platform service reading client snapshots.
fn service_token() -> String {
    testkit::token("order-service", None, &[Permission::ReadClientSnapshots])
}
