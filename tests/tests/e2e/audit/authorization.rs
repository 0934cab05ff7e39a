//! Who reaches what: client-bound tokens reach their own client only, tokens bound to no
//! customer are authenticated but authorized for no tenant (403 in every service), service
//! permissions never ride on a tenant's token, internal endpoints take a service token, and
//! token validation follows RFC 7519/8725 (`nbf`, `iat`, `aud` arrays).

use reqwest::{Method, StatusCode};
use serde_json::json;
use shared_model::auth::{Audience, Permission, claims_for, sign_hs256};
use shared_model::config::Secret;
use shared_model::testkit;

use super::{Platform, TENANT_ALL, assert_problem};

#[tokio::test]
async fn a_client_bound_token_reaches_only_its_own_client() {
    let p = Platform::start("audit-client-bound").await;
    let (cid, owner) = p.customer("reseller", TENANT_ALL).await;
    let partition = p.partition(cid, &owner).await;
    let own = p.client(cid, &owner, "Own").await;
    let other = p.client(cid, &owner, "Other").await;
    let own_id = own["id"].as_str().unwrap();
    let other_id = other["id"].as_str().unwrap();
    // A group with the other client in it.
    let (s, _, group) = p
        .call(
            &p.customers,
            Method::POST,
            &format!("/v1/customers/{cid}/groups"),
            Some(&owner),
            Some(json!({"name": "VIP"})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{group}");
    let members = format!(
        "/v1/customers/{cid}/groups/{}/members",
        group["id"].as_str().unwrap()
    );
    let (s, _, _) = p
        .call(
            &p.customers,
            Method::PUT,
            &format!("{members}/{other_id}"),
            Some(&owner),
            None,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);

    let bound = testkit::client_token("shopper", cid, own_id.parse().unwrap(), TENANT_ALL);
    let c = format!("/v1/customers/{cid}");
    let partition_keys = format!("{c}/partitions/{}/keys", partition["id"].as_str().unwrap());
    let customers = &p.customers;
    let keys = &p.keys;
    let refused = [
        (customers, Method::GET, c.clone(), None),
        (
            customers,
            Method::PATCH,
            c.clone(),
            Some(json!({"name": "Mine"})),
        ),
        (customers, Method::GET, format!("{c}/roles"), None),
        (customers, Method::GET, format!("{c}/registration"), None),
        (customers, Method::GET, format!("{c}/tags"), None),
        (
            customers,
            Method::POST,
            format!("{c}/tags"),
            Some(json!({"name": "t"})),
        ),
        (customers, Method::GET, format!("{c}/groups"), None),
        (customers, Method::GET, members.clone(), None),
        (customers, Method::GET, format!("{c}/clients/stats"), None),
        (keys, Method::GET, format!("{c}/partitions"), None),
        (keys, Method::GET, partition_keys.clone(), None),
        (
            keys,
            Method::POST,
            partition_keys.clone(),
            Some(json!({"name": "admin", "kind": "admin"})),
        ),
        (
            keys,
            Method::POST,
            format!("{c}/partition-groups"),
            Some(json!({"name": "g"})),
        ),
    ];
    for (app, method, path, body) in refused {
        let answer = p
            .call(app, method.clone(), &path, Some(&bound), body, &[])
            .await;
        assert_problem(&answer, StatusCode::FORBIDDEN, "FORBIDDEN");
        let _ = (method, path);
    }
    // Its own client, and its own client only.
    let (s, _, got) = p
        .call(
            customers,
            Method::GET,
            &format!("{c}/clients/{own_id}"),
            Some(&bound),
            None,
            &[],
        )
        .await;
    assert_eq!((s, got["id"].as_str()), (StatusCode::OK, Some(own_id)));
    let (s, _, listed) = p
        .call(
            customers,
            Method::GET,
            &format!("{c}/clients"),
            Some(&bound),
            None,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["items"][0]["id"], own_id);
    let answer = p
        .call(
            customers,
            Method::GET,
            &format!("{c}/clients/{other_id}"),
            Some(&bound),
            None,
            &[],
        )
        .await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, "KEY_MISMATCH");
}

#[tokio::test]
async fn tokens_bound_to_no_customer_and_service_permissions() {
    let p = Platform::start("audit-tokens").await;
    let (cid, owner) = p.customer("tokens", TENANT_ALL).await;
    let client = p.client(cid, &owner, "Snap").await;
    // Authenticated, not authorized for a tenant: 403 in both services.
    let unbound = testkit::token("someone", None, TENANT_ALL);
    for (app, path) in [
        (&p.customers, format!("/v1/customers/{cid}/clients")),
        (&p.keys, format!("/v1/customers/{cid}/partitions")),
    ] {
        let answer = p
            .call(app, Method::GET, &path, Some(&unbound), None, &[])
            .await;
        assert_problem(&answer, StatusCode::FORBIDDEN, "FORBIDDEN");
    }
    // A tenant token carrying a service permission is no token at all.
    for service in [Permission::VerifyApiKeys, Permission::ReadClientSnapshots] {
        let forged_role = testkit::token("owner", Some(cid), &[service, Permission::ViewClient]);
        let answer = p
            .call(
                &p.keys,
                Method::POST,
                "/v1/keys/verify",
                Some(&forged_role),
                Some(json!({"key": "pk_live_x"})),
                &[],
            )
            .await;
        assert_problem(&answer, StatusCode::UNAUTHORIZED, "NOT_AUTHORIZED");
    }
    // Internal endpoints: a service token, not the tenant's own nor an admin's.
    let snapshot = format!(
        "/internal/v1/customers/{cid}/clients/{}/snapshot",
        client["id"].as_str().unwrap()
    );
    for token in [owner.clone(), p.admin()] {
        let answer = p
            .call(
                &p.customers,
                Method::GET,
                &snapshot,
                Some(&token),
                None,
                &[],
            )
            .await;
        assert_problem(&answer, StatusCode::FORBIDDEN, "FORBIDDEN");
    }
    let service = testkit::token("orders", None, &[Permission::ReadClientSnapshots]);
    let (s, _, snap) = p
        .call(
            &p.customers,
            Method::GET,
            &snapshot,
            Some(&service),
            None,
            &[],
        )
        .await;
    assert_eq!((s, snap["name"].as_str()), (StatusCode::OK, Some("Snap")));
}

#[tokio::test]
async fn not_before_issued_at_and_audience_arrays() {
    let p = Platform::start("audit-claims").await;
    let (cid, _) = p.customer("claims", TENANT_ALL).await;
    let secret = Secret::new(testkit::TEST_SECRET.to_string());
    let base = claims_for(
        &testkit::auth_config(),
        "owner",
        Some(cid),
        &[Permission::ViewClient],
        std::time::Duration::from_secs(7200),
    );
    let now = base.iat.unwrap();
    let path = format!("/v1/customers/{cid}/clients");
    let get = |claims: shared_model::auth::Claims| {
        let token = sign_hs256(&claims, &secret).unwrap();
        let (p, path) = (&p, path.clone());
        async move {
            p.call(&p.customers, Method::GET, &path, Some(&token), None, &[])
                .await
        }
    };
    let mut later = base.clone();
    later.nbf = Some(now + 3600);
    assert_problem(
        &get(later).await,
        StatusCode::UNAUTHORIZED,
        "NOT_AUTHORIZED",
    );
    let mut future = base.clone();
    future.iat = Some(now + 3600);
    assert_problem(
        &get(future).await,
        StatusCode::UNAUTHORIZED,
        "NOT_AUTHORIZED",
    );
    let mut many = base.clone();
    many.aud = Audience::Many(vec!["billing".into(), testkit::auth_config().audience]);
    assert_eq!(get(many).await.0, StatusCode::OK);
    let mut none_ours = base.clone();
    none_ours.aud = Audience::Many(vec!["billing".into()]);
    assert_problem(
        &get(none_ours).await,
        StatusCode::UNAUTHORIZED,
        "NOT_AUTHORIZED",
    );
}
