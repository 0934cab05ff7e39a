use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::events::client as client_ev;
use shared_model::events::customer as ev;
use shared_model::events::org as org_ev;
use shared_model::ids::{ClientId, CustomerId};
use shared_model::testkit;

use crate::{Ctx, client_event, customer_event, eventually};

#[tokio::test]
async fn nothing_is_made_for_an_unknown_deleted_deactivated_or_disabled_owner() {
    let ctx = Ctx::new().await;
    let body = json!({"name": "Depot"});
    let deactivated = ctx.owner_in("deactivated", "active").await;
    deactivated
        .tenant
        .send(Method::POST, &deactivated.locations(), Some(&body))
        .await
        .expect_problem(StatusCode::CONFLICT, "CUSTOMER_DEACTIVATED");
    let disabled = ctx.owner_in("active", "disabled").await;
    disabled
        .clients
        .send(Method::POST, &disabled.client_locations(), Some(&body))
        .await
        .expect_problem(StatusCode::CONFLICT, "CLIENT_DISABLED");
    // Its customer level is not affected; its reads still work.
    let _: Value = disabled
        .tenant
        .post(&disabled.locations(), &body, StatusCode::CREATED)
        .await;
    let _: Value = disabled
        .clients
        .get(&disabled.client_locations(), StatusCode::OK)
        .await;
    let deleted = ctx.owner_in("deleted", "active").await;
    for path in [deleted.locations()] {
        deleted
            .tenant
            .send(Method::GET, &path, None::<&()>)
            .await
            .expect_problem(StatusCode::NOT_FOUND, "NOT_FOUND");
        deleted
            .tenant
            .send(Method::POST, &path, Some(&body))
            .await
            .expect_problem(StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    let o = ctx.owner().await;
    let unknown_client = format!(
        "/v1/customers/{}/clients/{}/locations",
        o.customer,
        ClientId::new()
    );
    o.clients
        .send(Method::GET, &unknown_client, None::<&()>)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "NOT_FOUND");
    let admin = ctx.admin();
    let unknown = format!("/v1/customers/{}/locations", CustomerId::new());
    admin
        .send(Method::GET, &unknown, None::<&()>)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "NOT_FOUND");
    admin
        .send(Method::POST, &unknown, Some(&body))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "NOT_FOUND");
}

/// The HQ locations of a customer, as its tenant reads them.
async fn hqs(ctx: &Ctx, customer: CustomerId) -> Vec<Value> {
    let t = testkit::token("viewer", Some(customer), &[Permission::ViewCustomer]);
    let res = ctx
        .send(
            Method::GET,
            &format!("/v1/customers/{customer}/locations?kind=hq"),
            &t,
            None,
        )
        .await;
    if res.status() != StatusCode::OK {
        return Vec::new();
    }
    let page: Value = res.json().await.unwrap();
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_new_business_customer_gets_its_hq_once_and_it_follows_the_customers_address() {
    let ctx = Ctx::new().await;
    let id = CustomerId::new();
    let address = json!({"lines": ["1 Main St"], "city": "Springfield"});
    let created = customer_event(ev::CREATED, id, "business", address.clone(), 1);
    testkit::publish(&ctx.amqp, std::slice::from_ref(&created)).await;
    eventually("the HQ", async || hqs(&ctx, id).await.len() == 1).await;
    let hq = hqs(&ctx, id).await.remove(0);
    assert_eq!(hq["name"], "Acme Corp");
    assert_eq!(hq["derivedFrom"], "customer");
    assert_eq!(hq["address"]["lines"], json!(["1 Main St"]));
    assert_eq!(hq["address"]["country"], "US");
    // Redelivered: still one HQ, one event.
    testkit::publish(&ctx.amqp, &[created]).await;
    let moved = json!({"lines": ["9 Elm St"], "city": "Shelbyville", "country": "CA"});
    testkit::publish(
        &ctx.amqp,
        &[customer_event(ev::UPDATED, id, "business", moved, 2)],
    )
    .await;
    eventually("the HQ to move", async || {
        hqs(&ctx, id)
            .await
            .first()
            .is_some_and(|h| h["address"]["country"] == "CA")
    })
    .await;
    assert_eq!(hqs(&ctx, id).await.len(), 1);
    assert_eq!(ctx.events_of(org_ev::LOCATION_CREATED).await.len(), 1);
    let updates = ctx.events_of(org_ev::LOCATION_UPDATED).await;
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0]["data"]["changedFields"], json!(["address"]));
    // Events of a reaction carry a trace (they continue the reacted-to event's).
    assert!(updates[0]["traceparent"].is_string(), "{}", updates[0]);

    // Once its address is edited through the API, the HQ no longer follows the customer.
    let t = testkit::token("org-admin", Some(id), &[Permission::ManageOrgStructure]);
    let item = format!(
        "/v1/customers/{id}/locations/{}",
        hq["id"].as_str().unwrap()
    );
    let own = json!({"address": {"lines": ["2 Own Rd"], "country": "CA"}});
    let edited = testkit::ok(
        ctx.send(Method::PATCH, &item, &t, Some(own)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(edited["derivedFrom"], Value::Null);
    let again = json!({"lines": ["3 Far Rd"], "country": "MX"});
    testkit::publish(
        &ctx.amqp,
        &[customer_event(ev::UPDATED, id, "business", again, 3)],
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        hqs(&ctx, id).await[0]["address"]["lines"],
        json!(["2 Own Rd"])
    );
}

#[tokio::test]
async fn consumers_and_customers_without_an_address_get_no_hq() {
    let ctx = Ctx::new().await;
    let consumer = CustomerId::new();
    let no_address = CustomerId::new();
    let address = json!({"lines": ["1 Main St"], "country": "GB"});
    testkit::publish(
        &ctx.amqp,
        &[
            customer_event(ev::CREATED, consumer, "consumer", address, 1),
            customer_event(ev::CREATED, no_address, "business", Value::Null, 1),
        ],
    )
    .await;
    for id in [consumer, no_address] {
        let t = testkit::token("viewer", Some(id), &[Permission::ViewCustomer]);
        eventually("the customer to be known", async || {
            ctx.send(
                Method::GET,
                &format!("/v1/customers/{id}/locations"),
                &t,
                None,
            )
            .await
            .status()
                == StatusCode::OK
        })
        .await;
        assert!(hqs(&ctx, id).await.is_empty());
    }
}

#[tokio::test]
async fn deleting_a_customer_or_a_client_removes_its_locations_with_their_events() {
    let ctx = Ctx::new().await;
    let id = CustomerId::new();
    let kept = ClientId::new();
    let gone = ClientId::new();
    testkit::publish(
        &ctx.amqp,
        &[
            customer_event(
                ev::CREATED,
                id,
                "business",
                json!({"lines": ["1 Main St"]}),
                1,
            ),
            client_event(client_ev::CREATED, id, kept, false, 1),
            client_event(client_ev::CREATED, id, gone, false, 1),
        ],
    )
    .await;
    eventually("the HQ", async || hqs(&ctx, id).await.len() == 1).await;
    let t = testkit::token(
        "editor",
        Some(id),
        &[Permission::EditClient, Permission::ViewClient],
    );
    for client in [kept, gone] {
        let path = format!("/v1/customers/{id}/clients/{client}/locations");
        eventually("the client to be known", async || {
            ctx.send(Method::POST, &path, &t, Some(json!({"name": "Site"})))
                .await
                .status()
                == StatusCode::CREATED
        })
        .await;
    }
    let t_org = testkit::token("org-admin", Some(id), &[Permission::ManageOrgStructure]);
    let dept = format!("/v1/customers/{id}/departments");
    let ops = ctx
        .send(Method::POST, &dept, &t_org, Some(json!({"name": "Ops"})))
        .await;
    testkit::ok(ops, StatusCode::CREATED).await;
    testkit::publish(
        &ctx.amqp,
        &[client_event(client_ev::DELETED, id, gone, false, 2)],
    )
    .await;
    let gone_path = format!("/v1/customers/{id}/clients/{gone}/locations");
    eventually("the client's deletion", async || {
        ctx.send(Method::GET, &gone_path, &t, None).await.status() == StatusCode::NOT_FOUND
    })
    .await;
    assert_eq!(ctx.events_of(org_ev::LOCATION_DELETED).await.len(), 1);
    // A stale update of the deleted client does not bring it back.
    testkit::publish(
        &ctx.amqp,
        &[client_event(client_ev::UPDATED, id, gone, false, 1)],
    )
    .await;

    testkit::publish(
        &ctx.amqp,
        &[customer_event(ev::DELETED, id, "business", Value::Null, 2)],
    )
    .await;
    eventually("the customer's deletion", async || {
        ctx.events_of(org_ev::LOCATION_DELETED).await.len() == 3
    })
    .await;
    assert_eq!(ctx.events_of(org_ev::DEPARTMENT_DELETED).await.len(), 1);
    let mut su = ctx.db.superuser().await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM locations WHERE customer_id = $1")
        .bind(id)
        .fetch_one(&mut su)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let kept_path = format!("/v1/customers/{id}/clients/{kept}/locations");
    testkit::problem(
        ctx.send(Method::GET, &kept_path, &t, None).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
}
