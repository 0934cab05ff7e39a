use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::events::org as ev;
use shared_model::testkit;

use crate::{Ctx, Owned};

fn contacts(o: &Owned) -> String {
    format!("/v1/customers/{}/contacts", o.customer)
}

fn client_contacts(o: &Owned) -> String {
    format!("/v1/customers/{}/clients/{}/contacts", o.customer, o.client)
}

fn last_names(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["lastName"].as_str().unwrap())
        .collect()
}

fn ada() -> Value {
    json!({
        "type": "billing", "salutation": "Dr.", "firstName": "Ada", "lastName": "Lovelace",
        "jobTitle": "Controller", "email": "Ada@Example.com", "phone": "+44 20 7946 0000",
        "mobile": "+44 7700 900000", "locale": "en-GB"
    })
}

#[tokio::test]
async fn contacts_are_created_listed_and_reached_from_their_location_and_department() {
    let ctx = Ctx::new().await;
    let o = ctx.owner().await;
    for (api, path, locations, departments) in [
        (
            &o.tenant,
            contacts(&o),
            o.locations(),
            format!("/v1/customers/{}/departments", o.customer),
        ),
        (
            &o.clients,
            client_contacts(&o),
            o.client_locations(),
            format!(
                "/v1/customers/{}/clients/{}/departments",
                o.customer, o.client
            ),
        ),
    ] {
        let site: Value = api
            .post(&locations, &json!({"name": "Plant"}), StatusCode::CREATED)
            .await;
        let dept: Value = api
            .post(
                &departments,
                &json!({"name": "Finance"}),
                StatusCode::CREATED,
            )
            .await;
        let mut body = ada();
        body["locationId"] = site["id"].clone();
        body["departmentId"] = dept["id"].clone();
        let answer = api.send(Method::POST, &path, Some(&body)).await;
        assert!(
            answer.headers["location"]
                .to_str()
                .unwrap()
                .starts_with(&path)
        );
        let c: Value = answer.expect(StatusCode::CREATED);
        assert_eq!(c["type"], "billing");
        assert_eq!(c["primary"], false);
        assert_eq!(c["email"], "Ada@example.com");
        let got: Value = api
            .get(
                &format!("{path}/{}", c["id"].as_str().unwrap()),
                StatusCode::OK,
            )
            .await;
        assert_eq!(got, c);
        let _: Value = api
            .post(
                &path,
                &json!({"type": "technical", "lastName": "babbage", "active": false}),
                StatusCode::CREATED,
            )
            .await;
        let _: Value = api
            .post(
                &path,
                &json!({"type": "logistics", "lastName": "Curie", "email": "marie@example.com"}),
                StatusCode::CREATED,
            )
            .await;
        for (query, expected) in [
            ("", vec!["babbage", "Curie", "Lovelace"]),
            ("?type=logistics", vec!["Curie"]),
            ("?active=false", vec!["babbage"]),
            ("?q=marie%40", vec!["Curie"]),
            ("?q=controller", vec!["Lovelace"]),
            ("?limit=1", vec!["babbage"]),
        ] {
            let page: Value = api.get(&format!("{path}{query}"), StatusCode::OK).await;
            assert_eq!(last_names(&page), expected, "{query}");
        }
        for reach in [
            format!("{locations}/{}/contacts", site["id"].as_str().unwrap()),
            format!("{departments}/{}/contacts", dept["id"].as_str().unwrap()),
        ] {
            let page: Value = api.get(&reach, StatusCode::OK).await;
            assert_eq!(last_names(&page), ["Lovelace"], "{reach}");
        }
    }
    assert_eq!(ctx.events_of(ev::CONTACT_CREATED).await.len(), 6);
}

#[tokio::test]
async fn an_owner_has_one_primary_contact_of_each_type() {
    let ctx = Ctx::new().await;
    let o = ctx.owner().await;
    let path = contacts(&o);
    let first: Value = o
        .tenant
        .post(
            &path,
            &json!({"type": "billing", "lastName": "First", "primary": true}),
            StatusCode::CREATED,
        )
        .await;
    let technical: Value = o
        .tenant
        .post(
            &path,
            &json!({"type": "technical", "lastName": "Tech", "primary": true}),
            StatusCode::CREATED,
        )
        .await;
    let second: Value = o
        .tenant
        .post(
            &path,
            &json!({"type": "billing", "lastName": "Second", "primary": true}),
            StatusCode::CREATED,
        )
        .await;
    let get = async |c: &Value| -> Value {
        o.tenant
            .get(
                &format!("{path}/{}", c["id"].as_str().unwrap()),
                StatusCode::OK,
            )
            .await
    };
    assert_eq!(get(&first).await["primary"], false);
    assert_eq!(get(&second).await["primary"], true);
    assert_eq!(get(&technical).await["primary"], true);
    // Changing the type of a primary contact takes the other type's designation.
    let _: Value = o
        .tenant
        .patch(
            &format!("{path}/{}", second["id"].as_str().unwrap()),
            &json!({"type": "technical"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(get(&technical).await["primary"], false);
    let primaries: Value = o
        .tenant
        .get(&format!("{path}?primary=true"), StatusCode::OK)
        .await;
    assert_eq!(last_names(&primaries), ["Second"]);
    // The client level has its own.
    let _: Value = o
        .clients
        .post(
            &client_contacts(&o),
            &json!({"type": "billing", "lastName": "Theirs", "primary": true}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(get(&second).await["primary"], true);
    let updates = ctx.events_of(ev::CONTACT_UPDATED).await;
    assert_eq!(updates.len(), 3);
    ctx.assert_updates_name_their_changes().await;
    let mut su = ctx.db.superuser().await;
    let err = sqlx::query(
        "UPDATE contacts SET is_primary = true WHERE customer_id = $1 AND client_id IS NULL",
    )
    .bind(o.customer)
    .execute(&mut su)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("contacts_primary_key"), "{err}");
}

#[tokio::test]
async fn contact_fields_and_references_are_validated() {
    let ctx = Ctx::new().await;
    let o = ctx.owner().await;
    let theirs: Value = o
        .clients
        .post(
            &o.client_locations(),
            &json!({"name": "Their site"}),
            StatusCode::CREATED,
        )
        .await;
    for (body, field) in [
        (json!({"type": "Billing", "lastName": "X"}), "type"),
        (json!({"type": "9lives", "lastName": "X"}), "type"),
        (json!({"type": "billing"}), "lastName"),
        (json!({"type": "billing", "lastName": " "}), "lastName"),
        (
            json!({"type": "billing", "lastName": "X", "salutation": "x".repeat(21)}),
            "salutation",
        ),
        (
            json!({"type": "billing", "lastName": "X", "email": "x@"}),
            "email",
        ),
        (
            json!({"type": "billing", "lastName": "X", "mobile": "call me"}),
            "mobile",
        ),
        (
            json!({"type": "billing", "lastName": "X", "locale": "english"}),
            "locale",
        ),
        (
            json!({"type": "billing", "lastName": "X", "locationId": theirs["id"]}),
            "locationId",
        ),
        (
            json!({"type": "billing", "lastName": "X", "departmentId": shared_model::ids::DepartmentId::new()}),
            "departmentId",
        ),
        (
            json!({"type": "billing", "lastName": "X", "nickname": "Y"}),
            "nickname",
        ),
    ] {
        o.tenant
            .send(Method::POST, &contacts(&o), Some(&body))
            .await
            .expect_invalid(field);
    }
    o.tenant
        .send(
            Method::GET,
            &format!("{}?type=Bad", contacts(&o)),
            None::<&()>,
        )
        .await
        .expect_invalid("type");
}

#[tokio::test]
async fn contacts_keep_to_their_owner_version_and_retries() {
    let ctx = Ctx::new().await;
    let o = ctx.owner().await;
    let other = ctx.owner().await;
    let c: Value = o
        .clients
        .post(&client_contacts(&o), &ada(), StatusCode::CREATED)
        .await;
    let item = format!("{}/{}", client_contacts(&o), c["id"].as_str().unwrap());
    let bound = |client| {
        ctx.client().as_user(&testkit::client_token(
            "c",
            o.customer,
            client,
            &[Permission::ViewClient, Permission::EditClient],
        ))
    };
    let _: Value = bound(o.client).get(&item, StatusCode::OK).await;
    bound(other.client)
        .send(Method::GET, &item, None::<&()>)
        .await
        .expect_problem(StatusCode::BAD_REQUEST, "KEY_MISMATCH");
    other
        .clients
        .send(Method::GET, &item, None::<&()>)
        .await
        .expect_problem(StatusCode::BAD_REQUEST, "KEY_MISMATCH");
    o.tenant
        .send(Method::DELETE, &item, None::<&()>)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "FORBIDDEN");
    ctx.client()
        .send(Method::GET, &item, None::<&()>)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "NOT_AUTHORIZED");
    let elsewhere = format!("{}/{}", contacts(&o), c["id"].as_str().unwrap());
    o.tenant
        .send(Method::GET, &elsewhere, None::<&()>)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "NOT_FOUND");

    let t = testkit::token("e", Some(o.customer), &[Permission::EditClient]);
    let stale = ctx
        .req(Method::PATCH, &item, Some(&t))
        .header("if-match", "\"9\"")
        .json(&json!({"lastName": "B"}))
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
        .clients
        .patch(
            &item,
            &json!({"jobTitle": null, "mobile": null}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(u["version"], 2);
    let updates = ctx.events_of(ev::CONTACT_UPDATED).await;
    assert_eq!(
        updates[0]["data"]["changedFields"],
        json!(["jobTitle", "mobile"])
    );
    let mut ids = Vec::new();
    for _ in 0..2 {
        let res = ctx
            .req(Method::POST, &client_contacts(&o), Some(&t))
            .header("idempotency-key", "c-1")
            .json(&ada())
            .send()
            .await
            .unwrap();
        ids.push(testkit::ok(res, StatusCode::CREATED).await["id"].clone());
    }
    assert_eq!(ids[0], ids[1]);
    o.clients.delete(&item, StatusCode::NO_CONTENT).await;
    assert_eq!(ctx.events_of(ev::CONTACT_DELETED).await.len(), 1);
    assert_eq!(ctx.events_of(ev::CONTACT_CREATED).await.len(), 2);
}

#[tokio::test]
async fn locations_and_departments_with_contacts_are_deleted_only_with_detach() {
    let ctx = Ctx::new().await;
    let o = ctx.owner().await;
    let site: Value = o
        .tenant
        .post(
            &o.locations(),
            &json!({"name": "Plant"}),
            StatusCode::CREATED,
        )
        .await;
    let departments = format!("/v1/customers/{}/departments", o.customer);
    let dept: Value = o
        .tenant
        .post(
            &departments,
            &json!({"name": "Finance"}),
            StatusCode::CREATED,
        )
        .await;
    let mut body = ada();
    body["locationId"] = site["id"].clone();
    body["departmentId"] = dept["id"].clone();
    let c: Value = o
        .tenant
        .post(&contacts(&o), &body, StatusCode::CREATED)
        .await;
    let cid = c["id"].as_str().unwrap();
    let site_path = format!("{}/{}", o.locations(), site["id"].as_str().unwrap());
    let dept_path = format!("{departments}/{}", dept["id"].as_str().unwrap());
    for (path, code) in [
        (&site_path, "LOCATION_IN_USE"),
        (&dept_path, "DEPARTMENT_IN_USE"),
    ] {
        let refused = o
            .tenant
            .send(Method::DELETE, path, None::<&()>)
            .await
            .expect_problem(StatusCode::CONFLICT, code);
        assert!(
            refused["detail"].as_str().unwrap().contains(cid),
            "{refused}"
        );
        o.tenant
            .delete(&format!("{path}?detach=true"), StatusCode::NO_CONTENT)
            .await;
    }
    let now: Value = o
        .tenant
        .get(&format!("{}/{cid}", contacts(&o)), StatusCode::OK)
        .await;
    assert_eq!(now["locationId"], Value::Null);
    assert_eq!(now["departmentId"], Value::Null);
    assert_eq!(now["version"], 3);
    let changed: Vec<Value> = ctx
        .events_of(ev::CONTACT_UPDATED)
        .await
        .into_iter()
        .map(|e| e["data"]["changedFields"].clone())
        .collect();
    assert_eq!(changed, [json!(["locationId"]), json!(["departmentId"])]);
}
