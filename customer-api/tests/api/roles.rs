use reqwest::{Method, StatusCode};
use serde_json::json;
use shared_model::auth::Permission;
use shared_model::testkit;

use crate::fixtures::{send, tenant_setup};
use crate::ok;
use crate::{Ctx, invalid, problem};

#[tokio::test]
async fn new_customers_get_default_roles_and_tenants_manage_their_own() {
    let ctx = Ctx::new().await;
    let (cid, t, _) = tenant_setup(&ctx, "roles").await;
    let roles = format!("/v1/customers/{cid}/roles");
    let listed = ok(
        send(&ctx, Method::GET, &roles, &t, None).await,
        StatusCode::OK,
    )
    .await;
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ClientEditor", "ClientViewer", "TenantAdmin"]);
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["isDefault"] == true)
    );
    assert_eq!(
        listed["items"][1]["permissions"],
        json!(["ViewCustomer", "ViewClient"])
    );

    let r = ok(
        send(
            &ctx,
            Method::POST,
            &roles,
            &t,
            Some(json!({"name": "Billing", "permissions": ["ViewCustomer", "ViewClient"]})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(r["isDefault"], false);
    for (body, field) in [
        (
            json!({"name": "Root", "permissions": ["PlatformAdminEditAllCustomers"]}),
            "permissions[0]",
        ),
        (
            json!({"name": "Svc", "permissions": ["VerifyApiKeys"]}),
            "permissions[0]",
        ),
        // A service permission makes a tenant token refused as a whole: never grantable.
        (
            json!({"name": "Snap", "permissions": ["ViewClient", "ReadClientSnapshots"]}),
            "permissions[1]",
        ),
        (
            json!({"name": "Typo", "permissions": ["EditEverything"]}),
            "permissions[0]",
        ),
        (json!({"name": "Empty", "permissions": []}), "permissions"),
        (
            json!({"name": "bad name!", "permissions": ["ViewClient"]}),
            "name",
        ),
    ] {
        invalid(
            send(&ctx, Method::POST, &roles, &t, Some(body)).await,
            field,
        )
        .await;
    }
    problem(
        send(
            &ctx,
            Method::POST,
            &roles,
            &t,
            Some(json!({"name": "billing", "permissions": ["ViewClient"]})),
        )
        .await,
        StatusCode::CONFLICT,
        "CONFLICT",
    )
    .await;

    let rloc = format!("{roles}/{}", r["id"].as_str().unwrap());
    let u = ok(
        send(
            &ctx,
            Method::PATCH,
            &rloc,
            &t,
            Some(json!({"permissions": ["ViewClient", "EditClient"]})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(u["version"], 2);
    let stale = ctx
        .req(Method::PATCH, &rloc, Some(&t))
        .header("if-match", "\"1\"")
        .json(&json!({"description": "x"}))
        .send()
        .await
        .unwrap();
    problem(
        stale,
        StatusCode::PRECONDITION_FAILED,
        "PRECONDITION_FAILED",
    )
    .await;
    assert_eq!(
        send(&ctx, Method::DELETE, &rloc, &t, None).await.status(),
        StatusCode::NO_CONTENT
    );

    // Default roles: permissions may change, the name and the role itself stay.
    let admin_role = listed["items"][2]["id"].as_str().unwrap();
    let aloc = format!("{roles}/{admin_role}");
    invalid(
        send(
            &ctx,
            Method::PATCH,
            &aloc,
            &t,
            Some(json!({"name": "Boss"})),
        )
        .await,
        "name",
    )
    .await;
    problem(
        send(&ctx, Method::DELETE, &aloc, &t, None).await,
        StatusCode::CONFLICT,
        "DEFAULT_ROLE",
    )
    .await;

    let events = ctx.events().await;
    let changes: Vec<_> = events
        .iter()
        .filter(|(k, _)| k == "customer.roles_changed")
        .collect();
    assert_eq!(changes.len(), 3);
    assert_eq!(changes[0].1["data"]["roles"].as_array().unwrap().len(), 4);
    assert_eq!(changes[2].1["data"]["roles"].as_array().unwrap().len(), 3);

    // Authorization.
    problem(
        ctx.req(Method::GET, &roles, None).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "NOT_AUTHORIZED",
    )
    .await;
    let viewer = testkit::token("v", Some(cid.parse().unwrap()), &[Permission::ViewCustomer]);
    ok(
        send(&ctx, Method::GET, &roles, &viewer, None).await,
        StatusCode::OK,
    )
    .await;
    problem(
        send(
            &ctx,
            Method::POST,
            &roles,
            &viewer,
            Some(json!({"name": "X", "permissions": ["ViewClient"]})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    let (_, other, _) = tenant_setup(&ctx, "roles-2").await;
    problem(
        send(&ctx, Method::GET, &roles, &other, None).await,
        StatusCode::BAD_REQUEST,
        "KEY_MISMATCH",
    )
    .await;
}
