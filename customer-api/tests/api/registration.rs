use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::testkit::{self, TestApp};

use crate::fixtures::send;
use crate::ok;
use crate::{Ctx, consumer, invalid, problem};

const REG_PERMS: &[Permission] = &[
    Permission::ViewCustomer,
    Permission::EditCustomer,
    Permission::EditRegistrationSettings,
];

async fn registrant(ctx: &Ctx, key: &str) -> (String, String) {
    let c = ctx.create(consumer(key, "Tenant")).await;
    let id = c["id"].as_str().unwrap().to_string();
    (
        id.clone(),
        testkit::token("admin", Some(id.parse().unwrap()), REG_PERMS),
    )
}

fn auth_service() -> String {
    testkit::token(
        "auth-service",
        None,
        &[Permission::PlatformAdminViewAllCustomers],
    )
}

async fn resolve(ctx: &Ctx, body: Value) -> reqwest::Response {
    send(
        ctx,
        Method::POST,
        "/v1/registrations/resolve",
        &auth_service(),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn settings_and_resolution() {
    let ctx = Ctx::new().await;
    let (id, t) = registrant(&ctx, "reg").await;
    let path = format!("/v1/customers/{id}/registration");
    let initial = ok(
        send(&ctx, Method::GET, &path, &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(initial["enabled"], false);
    assert_eq!(initial["version"], 0);

    let res = send(&ctx, Method::PUT, &path, &t, Some(json!({
        "enabled": true, "allowedDomains": ["Acme.com", "acme.co.uk."], "autoAssignRoles": ["ClientViewer"], "customHost": "portal.acme.com"
    }))).await;
    assert_eq!(res.headers()["etag"], "\"1\"");
    let r = ok(res, StatusCode::OK).await;
    assert_eq!(r["allowedDomains"], json!(["acme.co.uk", "acme.com"]));
    let got = ok(
        send(&ctx, Method::GET, &path, &t, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(got, r);

    let found = ok(
        resolve(&ctx, json!({"email": "new.user@ACME.com"})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        found,
        json!({"customerId": id, "roles": ["ClientViewer"], "sessionExpirationSeconds": 86400})
    );
    ok(
        resolve(
            &ctx,
            json!({"email": "x@acme.com", "host": "portal.acme.com"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;

    // Refusals.
    problem(
        resolve(&ctx, json!({"email": "x@unknown.example"})).await,
        StatusCode::NOT_FOUND,
        "DOMAIN_NOT_FOUND",
    )
    .await;
    let (other, other_t) = registrant(&ctx, "reg-other").await;
    ok(send(&ctx, Method::PUT, &format!("/v1/customers/{other}/registration"), &other_t, Some(json!({"enabled": true, "allowedDomains": ["other.example"], "customHost": "other.example"}))).await, StatusCode::OK).await;
    // A host selecting another customer than the e-mail's domain resolves to nothing.
    problem(
        resolve(
            &ctx,
            json!({"email": "x@acme.com", "host": "other.example"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "DOMAIN_NOT_FOUND",
    )
    .await;
    invalid(
        resolve(&ctx, json!({"email": "not-an-email"})).await,
        "email",
    )
    .await;
    problem(
        send(
            &ctx,
            Method::POST,
            "/v1/registrations/resolve",
            &t,
            Some(json!({"email": "x@acme.com"})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    problem(
        ctx.req(Method::POST, "/v1/registrations/resolve", None)
            .json(&json!({"email": "x@acme.com"}))
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "NOT_AUTHORIZED",
    )
    .await;

    // Disabled registration resolves to nothing.
    let stale = ctx
        .req(Method::PUT, &path, Some(&t))
        .header("if-match", "\"0\"")
        .json(&json!({"enabled": false, "allowedDomains": ["acme.com"]}))
        .send()
        .await
        .unwrap();
    problem(
        stale,
        StatusCode::PRECONDITION_FAILED,
        "PRECONDITION_FAILED",
    )
    .await;
    ok(
        send(
            &ctx,
            Method::PUT,
            &path,
            &t,
            Some(json!({"enabled": false, "allowedDomains": ["acme.com"]})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    problem(
        resolve(&ctx, json!({"email": "x@acme.com"})).await,
        StatusCode::NOT_FOUND,
        "DOMAIN_NOT_FOUND",
    )
    .await;
    // A deactivated customer resolves to nothing.
    ok(
        send(
            &ctx,
            Method::PUT,
            &path,
            &t,
            Some(json!({"enabled": true, "allowedDomains": ["acme.com"]})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    ok(
        resolve(&ctx, json!({"email": "x@acme.com"})).await,
        StatusCode::OK,
    )
    .await;
    let window = (time::OffsetDateTime::now_utc() + time::Duration::days(3))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    ok(
        send(
            &ctx,
            Method::POST,
            &format!("/v1/customers/{id}/deactivate"),
            &t,
            Some(json!({"windowEndsAt": window, "feedback": {"reasonCode": "other"}})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    problem(
        resolve(&ctx, json!({"email": "x@acme.com"})).await,
        StatusCode::NOT_FOUND,
        "DOMAIN_NOT_FOUND",
    )
    .await;

    let kinds: Vec<String> = ctx.events().await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "customer.registration_changed")
            .count(),
        4
    );
}

#[tokio::test]
async fn invalid_settings_are_refused() {
    let ctx = Ctx::new().await;
    let (id, t) = registrant(&ctx, "reg-bad").await;
    let path = format!("/v1/customers/{id}/registration");
    for (body, field) in [
        (
            json!({"enabled": true, "allowedDomains": ["gmail.com"]}),
            "allowedDomains[0]",
        ),
        (
            json!({"enabled": true, "allowedDomains": ["ok.example", "Outlook.com"]}),
            "allowedDomains[1]",
        ),
        (
            json!({"enabled": true, "allowedDomains": ["not a domain"]}),
            "allowedDomains[0]",
        ),
        (
            json!({"enabled": true, "allowedDomains": ["localhost"]}),
            "allowedDomains[0]",
        ),
        (
            json!({"enabled": true, "allowedDomains": ["a.example", "A.example"]}),
            "allowedDomains[1]",
        ),
        (json!({"enabled": true}), "allowedDomains"),
        (
            json!({"enabled": true, "allowedDomains": ["a.example"], "autoAssignRoles": ["Nope"]}),
            "autoAssignRoles[0]",
        ),
        (
            json!({"enabled": true, "allowedDomains": ["a.example"], "customHost": "http://x"}),
            "customHost",
        ),
        (
            json!({"enabled": false, "autoAssignRoles": ["ok", "bad*"]}),
            "autoAssignRoles[1]",
        ),
        (json!({"enabled": "yes"}), "enabled"),
    ] {
        invalid(send(&ctx, Method::PUT, &path, &t, Some(body)).await, field).await;
    }
    // The body is checked before the precondition: an invalid body with a stale
    // If-Match is 422, not 412.
    let res = ctx
        .req(Method::PUT, &path, Some(&t))
        .header("if-match", "\"41\"")
        .json(&json!({"enabled": false, "autoAssignRoles": ["bad*"]}))
        .send()
        .await
        .unwrap();
    invalid(res, "autoAssignRoles[0]").await;
    // Authorization.
    let viewer = testkit::token("v", Some(id.parse().unwrap()), &[Permission::ViewCustomer]);
    problem(
        send(&ctx, Method::GET, &path, &viewer, None).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    let (_, other) = registrant(&ctx, "reg-bad-2").await;
    problem(
        send(
            &ctx,
            Method::PUT,
            &path,
            &other,
            Some(json!({"enabled": false})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "KEY_MISMATCH",
    )
    .await;
    problem(
        ctx.req(Method::GET, &path, None).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "NOT_AUTHORIZED",
    )
    .await;
    assert!(
        !ctx.events()
            .await
            .iter()
            .any(|(k, _)| k == "customer.registration_changed")
    );
}

#[tokio::test]
async fn a_domain_belongs_to_one_customer_even_when_two_race() {
    let ctx = Ctx::new().await;
    let mut contenders = Vec::new();
    for i in 0..4 {
        contenders.push(registrant(&ctx, &format!("race-{i}")).await);
    }
    let mut tasks = Vec::new();
    for (id, t) in &contenders {
        let req = ctx
            .req(Method::PUT, &format!("/v1/customers/{id}/registration"), Some(t))
            .json(&json!({"enabled": true, "allowedDomains": ["contested.example"], "customHost": format!("{id}.hosts.example")}));
        tasks.push(tokio::spawn(async move {
            let res = req.send().await.unwrap();
            let status = res.status();
            let body: Value = res.json().await.unwrap();
            (status, body)
        }));
    }
    let mut won = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::OK => won += 1,
            StatusCode::CONFLICT => assert_eq!(body["code"], "DOMAIN_TAKEN", "{body}"),
            s => panic!("unexpected {s}: {body}"),
        }
    }
    assert_eq!(won, 1);
    let mut su = ctx.db.superuser().await;
    let owners: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM registration_domains WHERE domain = 'contested.example'",
    )
    .fetch_one(&mut su)
    .await
    .unwrap();
    assert_eq!(owners, 1);
    // A later claim is refused too; the same host twice is refused.
    let (id, t) = &contenders[0];
    let (id2, t2) = &contenders[1];
    let owner: String = sqlx::query_scalar(
        "SELECT customer_id::text FROM registration_domains WHERE domain = 'contested.example'",
    )
    .fetch_one(&mut su)
    .await
    .unwrap();
    let (loser, loser_t) = if owner == *id { (id2, t2) } else { (id, t) };
    problem(
        send(
            &ctx,
            Method::PUT,
            &format!("/v1/customers/{loser}/registration"),
            loser_t,
            Some(json!({"enabled": true, "allowedDomains": ["contested.example"]})),
        )
        .await,
        StatusCode::CONFLICT,
        "DOMAIN_TAKEN",
    )
    .await;
    problem(send(&ctx, Method::PUT, &format!("/v1/customers/{loser}/registration"), loser_t, Some(json!({"enabled": true, "allowedDomains": ["free.example"], "customHost": format!("{owner}.hosts.example")}))).await, StatusCode::CONFLICT, "HOST_TAKEN").await;
}

#[tokio::test]
async fn resolve_is_rate_limited_per_caller() {
    let ctx = Ctx::new().await;
    let mut cfg = testkit::config(&ctx.db, ctx.amqp.clone(), false);
    cfg.service = json!({"resolve_per_minute": 3});
    let app = TestApp::spawn(&customer_api::SERVICE, cfg).await;
    let call = |token: String| {
        app.http
            .post(app.url("/v1/registrations/resolve"))
            .bearer_auth(token)
            .json(&json!({"email": "x@nowhere.example"}))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(
            call(auth_service()).await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
    }
    let limited = call(auth_service()).await.unwrap();
    assert_eq!(limited.headers()["retry-after"], "20");
    problem(limited, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    // Another caller has its own budget.
    let other = testkit::token(
        "other-service",
        None,
        &[Permission::PlatformAdminViewAllCustomers],
    );
    assert_eq!(call(other).await.unwrap().status(), StatusCode::NOT_FOUND);
    app.stop().await;
}
