use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::events::org as ev;
use shared_model::ids::{ClientId, CustomerId, LocationId};
use shared_model::testkit;

use crate::Ctx;

fn warehouse() -> Value {
    json!({
        "name": "North Warehouse", "kind": "warehouse", "code": "WH-N",
        "address": {"lines": ["1 Dock Rd"], "city": "Leeds", "postalCode": "LS1 1AA", "country": "gb"},
        "phone": "+44 113 496 0000", "email": "North@Example.com", "timeZone": "europe/london"
    })
}

#[tokio::test]
async fn locations_are_created_read_and_listed_at_both_levels() {
    let ctx = Ctx::new().await;
    let o = ctx.owner().await;
    for (api, path, client) in [
        (&o.tenant, o.locations(), None),
        (&o.clients, o.client_locations(), Some(o.client)),
    ] {
        let answer = api.send(Method::POST, &path, Some(&warehouse())).await;
        assert_eq!(answer.headers["etag"], "\"1\"");
        let l: Value = answer.expect(StatusCode::CREATED);
        let id = l["id"].as_str().unwrap();
        assert_eq!(l["clientId"], json!(client));
        assert_eq!(l["address"]["country"], "GB");
        assert_eq!(l["email"], "North@example.com");
        assert_eq!(l["timeZone"], "Europe/London");
        assert_eq!(l["active"], true);
        assert_eq!(l["derivedFrom"], Value::Null);
        let got: Value = api.get(&format!("{path}/{id}"), StatusCode::OK).await;
        assert_eq!(got, l);

        let _: Value = api
            .post(
                &path,
                &json!({"name": "Shop A", "kind": "store", "active": false}),
                StatusCode::CREATED,
            )
            .await;
        let _: Value = api
            .post(&path, &json!({"name": "annex"}), StatusCode::CREATED)
            .await;
        let page: Value = api.get(&format!("{path}?limit=2"), StatusCode::OK).await;
        let names: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["annex", "North Warehouse"]);
        let cursor = page["nextCursor"].as_str().unwrap();
        let rest: Value = api
            .get(&format!("{path}?limit=2&cursor={cursor}"), StatusCode::OK)
            .await;
        assert_eq!(rest["items"][0]["name"], "Shop A");
        assert_eq!(rest["nextCursor"], Value::Null);
        for (query, expected) in [
            ("kind=store", vec!["Shop A"]),
            ("active=false", vec!["Shop A"]),
            ("active=true", vec!["annex", "North Warehouse"]),
            ("code=WH-N", vec!["North Warehouse"]),
            ("q=north%40example", vec!["North Warehouse"]),
            ("q=%25", vec![]),
        ] {
            let page: Value = api.get(&format!("{path}?{query}"), StatusCode::OK).await;
            let names: Vec<&str> = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["name"].as_str().unwrap())
                .collect();
            assert_eq!(names, expected, "{query}");
        }
    }
    // The levels are apart: the customer's list holds only its own.
    let own: Value = o.tenant.get(&o.locations(), StatusCode::OK).await;
    assert!(
        own["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["clientId"].is_null())
    );
    assert_eq!(ctx.events_of(ev::LOCATION_CREATED).await.len(), 6);
}

#[tokio::test]
async fn location_fields_are_validated_and_codes_are_unique_per_owner() {
    let ctx = Ctx::new().await;
    let o = ctx.owner().await;
    for (body, field) in [
        (json!({"name": " "}), "name"),
        (json!({"name": "x".repeat(201)}), "name"),
        (json!({"name": "A", "kind": "castle"}), "kind"),
        (json!({"name": "A", "code": "has space"}), "code"),
        (json!({"name": "A", "timeZone": "Mars/Olympus"}), "timeZone"),
        (
            json!({"name": "A", "address": {"lines": [], "country": "GB"}}),
            "address.lines",
        ),
        (
            json!({"name": "A", "address": {"lines": ["x"], "country": "XX"}}),
            "address.country",
        ),
        (json!({"name": "A", "email": "nope"}), "email"),
        (json!({"name": "A", "website": "ftp://x"}), "website"),
        (json!({"name": "A", "colour": "red"}), "colour"),
        (json!({"name": "A\u{0}"}), "name"),
    ] {
        o.tenant
            .send(Method::POST, &o.locations(), Some(&body))
            .await
            .expect_invalid(field);
    }
    let _: Value = o
        .tenant
        .post(&o.locations(), &warehouse(), StatusCode::CREATED)
        .await;
    o.tenant
        .send(Method::POST, &o.locations(), Some(&warehouse()))
        .await
        .expect_problem(StatusCode::CONFLICT, "CODE_IN_USE");
    // Another owner may use the same code.
    let _: Value = o
        .clients
        .post(&o.client_locations(), &warehouse(), StatusCode::CREATED)
        .await;
    for (rest, field) in [("?limit=0", "limit"), ("/not-a-uuid", "locationId")] {
        let path = format!("{}{rest}", o.locations());
        let answer = o.tenant.send(Method::GET, &path, None::<&()>).await;
        answer.expect_invalid(field);
    }
}

#[tokio::test]
async fn locations_need_the_permission_of_their_level_and_stay_in_their_tenant_and_client() {
    let ctx = Ctx::new().await;
    let o = ctx.owner().await;
    let other = ctx.owner().await;
    let l: Value = o
        .tenant
        .post(&o.locations(), &warehouse(), StatusCode::CREATED)
        .await;
    let item = format!("{}/{}", o.locations(), l["id"].as_str().unwrap());
    let k: Value = o
        .clients
        .post(&o.client_locations(), &warehouse(), StatusCode::CREATED)
        .await;
    let client_item = format!("{}/{}", o.client_locations(), k["id"].as_str().unwrap());

    let anonymous = ctx.client();
    anonymous
        .send(Method::GET, &item, None::<&()>)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "NOT_AUTHORIZED");
    // Client-level permissions do not reach the customer level, nor the reverse.
    o.clients
        .send(Method::GET, &item, None::<&()>)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "FORBIDDEN");
    o.tenant
        .send(Method::GET, &client_item, None::<&()>)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "FORBIDDEN");
    let viewer = ctx.client().as_user(&testkit::token(
        "v",
        Some(o.customer),
        &[Permission::ViewCustomer],
    ));
    let _: Value = viewer.get(&item, StatusCode::OK).await;
    viewer
        .send(Method::PATCH, &item, Some(&json!({"name": "B"})))
        .await
        .expect_problem(StatusCode::FORBIDDEN, "FORBIDDEN");
    // Another tenant: its token names another customer; its own path does not find ours.
    other
        .tenant
        .send(Method::GET, &item, None::<&()>)
        .await
        .expect_problem(StatusCode::BAD_REQUEST, "KEY_MISMATCH");
    let foreign = format!("{}/{}", other.locations(), l["id"].as_str().unwrap());
    other
        .tenant
        .send(Method::GET, &foreign, None::<&()>)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "NOT_FOUND");
    other
        .tenant
        .send(Method::DELETE, &foreign, None::<&()>)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "NOT_FOUND");
    // A client-bound token reaches its own client only.
    let bound = |client: ClientId| {
        ctx.client().as_user(&testkit::client_token(
            "c",
            o.customer,
            client,
            &[Permission::ViewClient, Permission::EditClient],
        ))
    };
    let _: Value = bound(o.client).get(&client_item, StatusCode::OK).await;
    bound(ClientId::new())
        .send(Method::GET, &client_item, None::<&()>)
        .await
        .expect_problem(StatusCode::BAD_REQUEST, "KEY_MISMATCH");
    bound(o.client)
        .send(Method::GET, &item, None::<&()>)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "FORBIDDEN");
    let elsewhere = format!(
        "/v1/customers/{}/clients/{}/locations/{}",
        o.customer,
        o.client,
        l["id"].as_str().unwrap()
    );
    bound(o.client)
        .send(Method::GET, &elsewhere, None::<&()>)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "NOT_FOUND");
    // Platform admins reach both levels.
    let _: Value = ctx.admin().get(&item, StatusCode::OK).await;
    let _: Value = ctx.admin().get(&client_item, StatusCode::OK).await;
    let _: Value = ctx
        .admin()
        .get(
            &format!(
                "/v1/customers/{}/locations/{}",
                CustomerId::new(),
                LocationId::new()
            ),
            StatusCode::NOT_FOUND,
        )
        .await;
}

#[tokio::test]
async fn location_updates_honour_if_match_name_their_changes_and_deletes_publish() {
    let ctx = Ctx::new().await;
    let o = ctx.owner().await;
    let l: Value = o
        .tenant
        .post(&o.locations(), &warehouse(), StatusCode::CREATED)
        .await;
    let item = format!("{}/{}", o.locations(), l["id"].as_str().unwrap());
    let stale = ctx
        .req(Method::PATCH, &item, None)
        .bearer_auth(testkit::token(
            "org-admin",
            Some(o.customer),
            &[Permission::ManageOrgStructure],
        ))
        .header("if-match", "\"7\"")
        .json(&json!({"name": "B"}))
        .send()
        .await
        .unwrap();
    testkit::problem(
        stale,
        StatusCode::PRECONDITION_FAILED,
        "PRECONDITION_FAILED",
    )
    .await;
    let u: Value = o
        .tenant
        .patch(
            &item,
            &json!({"name": "North Hub", "phone": null, "active": false}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(u["version"], 2);
    assert_eq!(u["phone"], Value::Null);
    // Nothing changed: no new version, no event.
    let same: Value = o
        .tenant
        .patch(&item, &json!({"name": "North Hub"}), StatusCode::OK)
        .await;
    assert_eq!(same["version"], 2);
    o.tenant
        .send(Method::PATCH, &item, Some(&json!({"timeZone": "Nowhere"})))
        .await
        .expect_invalid("timeZone");
    let updates = ctx.events_of(ev::LOCATION_UPDATED).await;
    assert_eq!(updates.len(), 1);
    let mut changed: Vec<&str> = updates[0]["data"]["changedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    changed.sort();
    assert_eq!(changed, ["active", "name", "phone"]);
    ctx.assert_updates_name_their_changes().await;

    o.tenant.delete(&item, StatusCode::NO_CONTENT).await;
    o.tenant
        .send(Method::GET, &item, None::<&()>)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "NOT_FOUND");
    let deleted = ctx.events_of(ev::LOCATION_DELETED).await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["data"]["version"], 3);
}

#[tokio::test]
async fn a_retried_create_with_the_same_idempotency_key_is_applied_once() {
    let ctx = Ctx::new().await;
    let o = ctx.owner().await;
    let t = testkit::token(
        "org-admin",
        Some(o.customer),
        &[Permission::ManageOrgStructure],
    );
    let mut ids = Vec::new();
    for _ in 0..2 {
        let res = ctx
            .req(Method::POST, &o.locations(), Some(&t))
            .header("idempotency-key", "loc-1")
            .json(&warehouse())
            .send()
            .await
            .unwrap();
        ids.push(testkit::ok(res, StatusCode::CREATED).await["id"].clone());
    }
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ctx.events_of(ev::LOCATION_CREATED).await.len(), 1);
}

#[tokio::test]
async fn an_owner_has_one_hq_and_a_new_hq_takes_the_designation() {
    let ctx = Ctx::new().await;
    let o = ctx.owner().await;
    let first: Value = o
        .tenant
        .post(
            &o.locations(),
            &json!({"name": "Old HQ", "kind": "hq"}),
            StatusCode::CREATED,
        )
        .await;
    let second: Value = o
        .tenant
        .post(
            &o.locations(),
            &json!({"name": "New HQ", "kind": "hq"}),
            StatusCode::CREATED,
        )
        .await;
    let old = format!("{}/{}", o.locations(), first["id"].as_str().unwrap());
    let was: Value = o.tenant.get(&old, StatusCode::OK).await;
    assert_eq!(was["kind"], "branch");
    assert_eq!(was["version"], 2);
    // Making the old one the HQ again moves it back.
    let _: Value = o
        .tenant
        .patch(&old, &json!({"kind": "hq"}), StatusCode::OK)
        .await;
    let new = format!("{}/{}", o.locations(), second["id"].as_str().unwrap());
    let now: Value = o.tenant.get(&new, StatusCode::OK).await;
    assert_eq!(now["kind"], "branch");
    let hqs: Value = o
        .tenant
        .get(&format!("{}?kind=hq", o.locations()), StatusCode::OK)
        .await;
    assert_eq!(hqs["items"].as_array().unwrap().len(), 1);
    // The client has an HQ of its own.
    let _: Value = o
        .clients
        .post(
            &o.client_locations(),
            &json!({"name": "Client HQ", "kind": "hq"}),
            StatusCode::CREATED,
        )
        .await;
    let updates = ctx.events_of(ev::LOCATION_UPDATED).await;
    assert_eq!(updates.len(), 3);
    ctx.assert_updates_name_their_changes().await;
    // The database holds the rule even for a writer that skips the designation move.
    let mut su = ctx.db.superuser().await;
    let err =
        sqlx::query("UPDATE locations SET kind = 'hq' WHERE customer_id = $1 AND kind <> 'hq'")
            .bind(o.customer)
            .execute(&mut su)
            .await
            .unwrap_err();
    assert!(err.to_string().contains("locations_hq_key"), "{err}");
}
