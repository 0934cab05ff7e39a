use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::events::client as client_ev;
use shared_model::events::org as ev;
use shared_model::events::{CloudEvent, EventType};
use shared_model::ids::{AddressId, ClientId, CustomerId};
use shared_model::testkit;

use crate::{Ctx, eventually};

#[tokio::test]
async fn org_settings_default_to_off_and_change_with_if_match_and_an_event() {
    let ctx = Ctx::new().await;
    let o = ctx.owner().await;
    let path = format!("/v1/customers/{}/org-settings", o.customer);
    let s: Value = o.tenant.get(&path, StatusCode::OK).await;
    assert_eq!(s["clientHqFromAddress"], false);
    assert_eq!(s["version"], 0);
    let t = testkit::token(
        "org-admin",
        Some(o.customer),
        &[Permission::ManageOrgStructure],
    );
    let stale = ctx
        .req(Method::PUT, &path, Some(&t))
        .header("if-match", "\"3\"")
        .json(&json!({"clientHqFromAddress": true}))
        .send()
        .await
        .unwrap();
    testkit::problem(
        stale,
        StatusCode::PRECONDITION_FAILED,
        "PRECONDITION_FAILED",
    )
    .await;
    let on = ctx
        .req(Method::PUT, &path, Some(&t))
        .header("if-match", "\"0\"")
        .json(&json!({"clientHqFromAddress": true}))
        .send()
        .await
        .unwrap();
    let on = testkit::ok(on, StatusCode::OK).await;
    assert_eq!(on["version"], 1);
    // The same again: no change, no event.
    let same = testkit::ok(
        ctx.send(
            Method::PUT,
            &path,
            &t,
            Some(json!({"clientHqFromAddress": true})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(same["version"], 1);
    let events = ctx.events_of(ev::SETTINGS_UPDATED).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["data"]["changedFields"],
        json!(["clientHqFromAddress"])
    );
    for (body, field) in [
        (json!({}), "clientHqFromAddress"),
        (json!({"clientHqFromAddress": "yes"}), "clientHqFromAddress"),
        (json!({"clientHqFromAddress": true, "x": 1}), "x"),
    ] {
        testkit::invalid(ctx.send(Method::PUT, &path, &t, Some(body)).await, field).await;
    }
    let viewer = testkit::token("v", Some(o.customer), &[Permission::ViewCustomer]);
    testkit::problem(
        ctx.send(
            Method::PUT,
            &path,
            &viewer,
            Some(json!({"clientHqFromAddress": false})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    let other = ctx.owner().await;
    other
        .tenant
        .send(Method::GET, &path, None::<&()>)
        .await
        .expect_problem(StatusCode::BAD_REQUEST, "KEY_MISMATCH");
    o.clients
        .send(Method::GET, &path, None::<&()>)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "FORBIDDEN");
    ctx.admin()
        .send(
            Method::GET,
            &format!("/v1/customers/{}/org-settings", CustomerId::new()),
            None::<&()>,
        )
        .await
        .expect_problem(StatusCode::NOT_FOUND, "NOT_FOUND");
}

/// A `client_address.*` event as customer-api publishes it.
fn address_event(
    kind: EventType,
    customer: CustomerId,
    client: ClientId,
    id: AddressId,
    line: &str,
    version: i64,
) -> CloudEvent {
    let data = json!({
        "id": id, "customerId": customer, "clientId": client, "label": "Main office",
        "lines": [line], "city": "Leeds", "region": null, "postalCode": null, "country": "GB",
        "defaultShipping": false, "defaultBilling": true, "version": version,
        "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"
    });
    CloudEvent::new(
        "/customer-api",
        kind,
        id,
        Some(customer),
        "admin",
        None,
        &data,
    )
    .unwrap()
}

#[tokio::test]
async fn with_the_setting_on_a_clients_first_address_makes_its_hq_which_follows_it() {
    let ctx = Ctx::new().await;
    let o = ctx.owner().await;
    let mut su = ctx.db.superuser().await;
    let later = ClientId::new();
    sqlx::query("INSERT INTO known_clients (customer_id, client_id, status, version) VALUES ($1, $2, 'active', 1)")
        .bind(o.customer)
        .bind(later)
        .execute(&mut su)
        .await
        .unwrap();
    let hqs = |client: ClientId| {
        format!(
            "/v1/customers/{}/clients/{client}/locations?kind=hq",
            o.customer
        )
    };
    let (first, second) = (AddressId::new(), AddressId::new());
    // Off (the default): the client's address makes nothing. Wait until the consumer has
    // applied it (its inbox row) before turning the setting on.
    let off = address_event(
        client_ev::ADDRESS_CREATED,
        o.customer,
        o.client,
        first,
        "1 Off St",
        1,
    );
    testkit::publish(&ctx.amqp, std::slice::from_ref(&off)).await;
    eventually("the first address to be applied", async || {
        let mut su = ctx.db.superuser().await;
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM inbox WHERE event_id = $1")
            .bind(off.id)
            .fetch_one(&mut su)
            .await
            .unwrap()
            == 1
    })
    .await;
    let path = format!("/v1/customers/{}/org-settings", o.customer);
    let _: Value = o
        .tenant
        .send(
            Method::PUT,
            &path,
            Some(&json!({"clientHqFromAddress": true})),
        )
        .await
        .expect(StatusCode::OK);
    testkit::publish(
        &ctx.amqp,
        &[address_event(
            client_ev::ADDRESS_CREATED,
            o.customer,
            later,
            second,
            "2 On St",
            1,
        )],
    )
    .await;
    eventually("the client's HQ", async || {
        let page: Value = o.clients.get(&hqs(later), StatusCode::OK).await;
        page["items"].as_array().is_some_and(|a| a.len() == 1)
    })
    .await;
    // The first address, applied while the setting was off, made nothing.
    let none: Value = o.clients.get(&hqs(o.client), StatusCode::OK).await;
    assert!(none["items"].as_array().unwrap().is_empty());
    let page: Value = o.clients.get(&hqs(later), StatusCode::OK).await;
    let hq = &page["items"][0];
    assert_eq!(hq["name"], "Main office");
    assert_eq!(hq["derivedFrom"], "client");
    assert_eq!(hq["address"]["lines"], json!(["2 On St"]));

    // It follows a newer version of that address; not an older one, nor another address.
    testkit::publish(
        &ctx.amqp,
        &[
            address_event(
                client_ev::ADDRESS_UPDATED,
                o.customer,
                later,
                second,
                "3 Moved St",
                3,
            ),
            address_event(
                client_ev::ADDRESS_UPDATED,
                o.customer,
                later,
                second,
                "stale",
                2,
            ),
            address_event(
                client_ev::ADDRESS_CREATED,
                o.customer,
                later,
                AddressId::new(),
                "another",
                1,
            ),
            address_event(
                client_ev::ADDRESS_UPDATED,
                o.customer,
                o.client,
                first,
                "marker",
                2,
            ),
        ],
    )
    .await;
    eventually("the HQ to move", async || {
        let page: Value = o.clients.get(&hqs(later), StatusCode::OK).await;
        page["items"][0]["address"]["lines"] == json!(["3 Moved St"])
    })
    .await;
    // The events after the move (an older version, another address, another client's
    // address) change nothing.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let page: Value = o.clients.get(&hqs(later), StatusCode::OK).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["address"]["lines"], json!(["3 Moved St"]));
    assert_eq!(page["items"][0]["version"], 2);
    assert_eq!(ctx.events_of(ev::LOCATION_CREATED).await.len(), 1);
    assert_eq!(ctx.events_of(ev::LOCATION_UPDATED).await.len(), 1);
}
