//! Hostile input: U+0000 anywhere a text can hide, arrays where an object is declared, and
//! numbers that would overflow a time. Each is a 422 naming the field, never a 500.

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Platform, TENANT_ALL, assert_invalid};

#[tokio::test]
async fn nul_characters_are_refused_wherever_text_goes() {
    let p = Platform::start("audit-nul").await;
    let (cid, owner) = p.customer("nul", TENANT_ALL).await;
    let clients = format!("/v1/customers/{cid}/clients");
    let post = |path: String, body: Value| {
        let p = &p;
        let owner = owner.clone();
        async move {
            p.call(
                &p.customers,
                Method::POST,
                &path,
                Some(&owner),
                Some(body),
                &[],
            )
            .await
        }
    };
    // A body field, a nested one, and a key.
    assert_invalid(
        &post(
            clients.clone(),
            json!({"type": "business", "name": "a\u{0}b"}),
        )
        .await,
        "name",
    );
    assert_invalid(
        &post(
            clients.clone(),
            json!({"type": "business", "name": "n", "businessProfile": {"externalId": "x\u{0}"}}),
        )
        .await,
        "businessProfile.externalId",
    );
    // Text inside free-form JSON.
    let deactivate = json!({
        "windowEndsAt": "2099-01-01T00:00:00Z",
        "feedback": {"reasonCode": "other", "context": {"screens": ["billing", "\u{0}"]}}
    });
    assert_invalid(
        &post(format!("/v1/customers/{cid}/deactivate"), deactivate).await,
        "feedback.context.screens[1]",
    );
    // Query filters, raw and percent-encoded.
    for q in ["q=%00", "tag=a%00b", "assignee=%00"] {
        let answer = p
            .call(
                &p.customers,
                Method::GET,
                &format!("{clients}?{q}"),
                Some(&owner),
                None,
                &[],
            )
            .await;
        assert_invalid(&answer, q.split('=').next().unwrap());
    }
    // A cursor whose position holds a NUL.
    let cursor = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"["2026-01-01T00:00:00Z","\u0000"]"#);
    let answer = p
        .call(
            &p.customers,
            Method::GET,
            &format!("{clients}?cursor={cursor}"),
            Some(&owner),
            None,
            &[],
        )
        .await;
    assert_invalid(&answer, "cursor");
    // And the same in the other service.
    let answer = p
        .call(
            &p.keys,
            Method::POST,
            &format!("/v1/customers/{cid}/partitions"),
            Some(&owner),
            Some(json!({"name": "p\u{0}", "environment": "dev"})),
            &[],
        )
        .await;
    assert_invalid(&answer, "name");
}

#[tokio::test]
async fn a_body_declared_as_an_object_must_be_one() {
    let p = Platform::start("audit-arrays").await;
    let (cid, owner) = p.customer("arrays", TENANT_ALL).await;
    let (s, _, tag) = p
        .call(
            &p.customers,
            Method::POST,
            &format!("/v1/customers/{cid}/tags"),
            Some(&owner),
            Some(json!({"name": "vip"})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{tag}");
    let tag_path = format!("/v1/customers/{cid}/tags/{}", tag["id"].as_str().unwrap());
    for body in [json!(["renamed"]), json!("renamed"), json!(3), json!(null)] {
        let answer = p
            .call(
                &p.customers,
                Method::PATCH,
                &tag_path,
                Some(&owner),
                Some(body),
                &[],
            )
            .await;
        assert_invalid(&answer, "body");
    }
    let (_, _, unchanged) = p
        .call(
            &p.customers,
            Method::GET,
            &tag_path,
            Some(&owner),
            None,
            &[],
        )
        .await;
    assert_eq!(unchanged["name"], "vip");
    let answer = p
        .call(
            &p.keys,
            Method::POST,
            &format!("/v1/customers/{cid}/partitions"),
            Some(&owner),
            Some(json!(["p", "dev"])),
            &[],
        )
        .await;
    assert_invalid(&answer, "body");
    // Nothing was created (once partition-keys knows the customer, its list is empty).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let list = loop {
        let (s, _, list) = p
            .call(
                &p.keys,
                Method::GET,
                &format!("/v1/customers/{cid}/partitions"),
                Some(&owner),
                None,
                &[],
            )
            .await;
        if s == StatusCode::OK {
            break list;
        }
        assert!(std::time::Instant::now() < deadline, "{s} {list}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");
}

#[tokio::test]
async fn durations_out_of_range_are_refused_not_overflowed() {
    let p = Platform::start("audit-numbers").await;
    let (cid, owner) = p.customer("numbers", TENANT_ALL).await;
    let keys = p.keys_path(cid, &owner).await;
    for ttl in [
        json!(9_223_372_036_854_775_807i64),
        json!(1_000_000_000_000_000i64),
        json!(i64::MIN),
        json!(-1),
        json!(59),
    ] {
        let answer = p
            .call(
                &p.keys,
                Method::POST,
                &keys,
                Some(&owner),
                Some(json!({"name": "k", "kind": "admin", "ttlSeconds": ttl})),
                &[],
            )
            .await;
        assert_invalid(&answer, "ttlSeconds");
    }
    let (s, _, k) = p
        .call(
            &p.keys,
            Method::POST,
            &keys,
            Some(&owner),
            Some(json!({"name": "k", "kind": "admin", "ttlSeconds": 3600})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    let rotate = format!("{keys}/{}/rotate", k["key"]["id"].as_str().unwrap());
    for overlap in [json!(i64::MAX), json!(i64::MIN)] {
        let answer = p
            .call(
                &p.keys,
                Method::POST,
                &rotate,
                Some(&owner),
                Some(json!({"overlapSeconds": overlap})),
                &[],
            )
            .await;
        assert_invalid(&answer, "overlapSeconds");
    }
    // A purchase dated year 1.
    let client = p.client(cid, &owner, "Old").await;
    let answer = p
        .call(
            &p.customers,
            Method::POST,
            &format!(
                "/v1/customers/{cid}/clients/{}/purchases",
                client["id"].as_str().unwrap()
            ),
            Some(&owner),
            Some(
                json!({"amountMinor": 5, "currency": "EUR", "purchasedAt": "0001-01-01T00:00:00Z"}),
            ),
            &[],
        )
        .await;
    assert_invalid(&answer, "purchasedAt");
}

/// A malformed id in any path parameter of any documented operation is a 422 naming that
/// parameter as the document spells it, and the request's metrics carry the documented route.
#[tokio::test]
async fn a_malformed_path_id_is_refused_naming_the_documented_parameter() {
    let p = Platform::start("audit-path-params").await;
    let admin = p.admin();
    for app in [&p.customers, &p.keys] {
        let doc = p
            .call(app, Method::GET, "/openapi.json", None, None, &[])
            .await
            .2;
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            let params: Vec<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            // The logo's content address is a digest, not an id.
            if params.is_empty() || path == "/v1/logos/{sha256}" {
                continue;
            }
            for method in item.as_object().unwrap().keys() {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                for bad in &params {
                    let mut target = path.clone();
                    for name in &params {
                        let value = if name == bad {
                            "not-an-id".to_string()
                        } else {
                            uuid::Uuid::now_v7().to_string()
                        };
                        target = target.replace(&format!("{{{name}}}"), &value);
                    }
                    let body = matches!(method, Method::POST | Method::PUT | Method::PATCH)
                        .then(|| json!({}));
                    let answer = p
                        .call(app, method.clone(), &target, Some(&admin), body, &[])
                        .await;
                    assert_eq!(
                        answer.0,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "{method} {target}: {}",
                        answer.2
                    );
                    assert_eq!(
                        answer.2["errors"][0]["field"], *bad,
                        "{method} {target}: {}",
                        answer.2
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 5, "only {checked} operations with path ids");
    }
    let text = p
        .http
        .get(p.customers.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"route="/v1/customers/{customerId}/clients/{clientId}""#),
        "{text}"
    );
}
