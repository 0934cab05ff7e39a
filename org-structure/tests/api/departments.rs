use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::events::org as ev;
use shared_model::testkit;

use crate::{Ctx, Owned};

/// Creates a department at `path` and returns it.
async fn department(api: &testkit::Client, path: &str, body: Value) -> Value {
    api.post(path, &body, StatusCode::CREATED).await
}

fn departments(o: &Owned) -> String {
    format!("/v1/customers/{}/departments", o.customer)
}

fn names(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn departments_form_a_tree_of_at_most_five_levels_without_cycles() {
    let ctx = Ctx::new().await;
    let o = ctx.owner().await;
    let path = departments(&o);
    let mut chain: Vec<Value> = Vec::new();
    for level in 1..=5 {
        let parent = chain
            .last()
            .map(|p: &Value| p["id"].clone())
            .unwrap_or(Value::Null);
        let d = department(
            &o.tenant,
            &path,
            json!({"name": format!("Level {level}"), "parentId": parent}),
        )
        .await;
        chain.push(d);
    }
    let sixth = json!({"name": "Level 6", "parentId": chain[4]["id"]});
    o.tenant
        .send(Method::POST, &path, Some(&sixth))
        .await
        .expect_invalid("parentId");
    // A cycle: the top under its own descendant; the department under itself.
    let top = format!("{path}/{}", chain[0]["id"].as_str().unwrap());
    for parent in [&chain[2]["id"], &chain[0]["id"]] {
        o.tenant
            .send(Method::PATCH, &top, Some(&json!({"parentId": parent})))
            .await
            .expect_invalid("parentId");
    }
    // Moving a subtree of two levels under level 4 would make six.
    let side = department(&o.tenant, &path, json!({"name": "Side"})).await;
    let _ = department(
        &o.tenant,
        &path,
        json!({"name": "Side child", "parentId": side["id"]}),
    )
    .await;
    let side_path = format!("{path}/{}", side["id"].as_str().unwrap());
    o.tenant
        .send(
            Method::PATCH,
            &side_path,
            Some(&json!({"parentId": chain[3]["id"]})),
        )
        .await
        .expect_invalid("parentId");
    let moved: Value = o
        .tenant
        .patch(
            &side_path,
            &json!({"parentId": chain[2]["id"]}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(moved["parentId"], chain[2]["id"]);
    // Parents of another owner, or none at all, are refused.
    let theirs = department(
        &o.clients,
        &format!(
            "/v1/customers/{}/clients/{}/departments",
            o.customer, o.client
        ),
        json!({"name": "Client dept"}),
    )
    .await;
    for parent in [theirs["id"].clone(), json!(uuid_v7())] {
        o.tenant
            .send(
                Method::POST,
                &path,
                Some(&json!({"name": "X", "parentId": parent})),
            )
            .await
            .expect_invalid("parentId");
    }
    let children: Value = o
        .tenant
        .get(
            &format!("{path}?parentId={}", chain[2]["id"].as_str().unwrap()),
            StatusCode::OK,
        )
        .await;
    assert_eq!(names(&children), ["Level 4", "Side"]);
    ctx.assert_updates_name_their_changes().await;
}

fn uuid_v7() -> String {
    shared_model::ids::DepartmentId::new().to_string()
}

#[tokio::test]
async fn departments_are_listed_filtered_and_reached_from_their_location() {
    let ctx = Ctx::new().await;
    let o = ctx.owner().await;
    let path = departments(&o);
    let site: Value = o
        .tenant
        .post(
            &o.locations(),
            &json!({"name": "Plant"}),
            StatusCode::CREATED,
        )
        .await;
    let _ = department(
        &o.tenant,
        &path,
        json!({"name": "Sales", "code": "S-1", "locationId": site["id"]}),
    )
    .await;
    let _ = department(
        &o.tenant,
        &path,
        json!({"name": "Support", "locationId": site["id"], "active": false}),
    )
    .await;
    let _ = department(&o.tenant, &path, json!({"name": "Finance"})).await;
    for (query, expected) in [
        ("", vec!["Finance", "Sales", "Support"]),
        ("?active=false", vec!["Support"]),
        ("?code=S-1", vec!["Sales"]),
        ("?q=sup", vec!["Support"]),
        (
            &format!("?locationId={}", site["id"].as_str().unwrap()),
            vec!["Sales", "Support"],
        ),
    ] {
        let page: Value = o
            .tenant
            .get(&format!("{path}{query}"), StatusCode::OK)
            .await;
        assert_eq!(names(&page), expected, "{query}");
    }
    let at = format!(
        "{}/{}/departments",
        o.locations(),
        site["id"].as_str().unwrap()
    );
    let page: Value = o.tenant.get(&at, StatusCode::OK).await;
    assert_eq!(names(&page), ["Sales", "Support"]);
    let page: Value = o
        .tenant
        .get(&format!("{at}?active=true"), StatusCode::OK)
        .await;
    assert_eq!(names(&page), ["Sales"]);
    // The client level has its own: the customer's location is not its.
    let client_path = format!(
        "/v1/customers/{}/clients/{}/departments",
        o.customer, o.client
    );
    o.clients
        .send(
            Method::POST,
            &client_path,
            Some(&json!({"name": "Ops", "locationId": site["id"]})),
        )
        .await
        .expect_invalid("locationId");
    let client_at = format!(
        "{}/{}/departments",
        o.client_locations(),
        site["id"].as_str().unwrap()
    );
    o.clients
        .send(Method::GET, &client_at, None::<&()>)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "NOT_FOUND");
    o.tenant
        .send(
            Method::POST,
            &path,
            Some(&json!({"name": "Dup", "code": "S-1"})),
        )
        .await
        .expect_problem(StatusCode::CONFLICT, "CODE_IN_USE");
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "A", "code": "a b"}), "code"),
        (json!({"name": "A", "parentId": "nope"}), "parentId"),
        (json!({"name": "A", "floor": 3}), "floor"),
    ] {
        o.tenant
            .send(Method::POST, &path, Some(&body))
            .await
            .expect_invalid(field);
    }
    assert_eq!(ctx.events_of(ev::DEPARTMENT_CREATED).await.len(), 3);
}

#[tokio::test]
async fn what_others_point_to_is_deleted_only_with_detach() {
    let ctx = Ctx::new().await;
    let o = ctx.owner().await;
    let path = departments(&o);
    let site: Value = o
        .tenant
        .post(
            &o.locations(),
            &json!({"name": "Plant"}),
            StatusCode::CREATED,
        )
        .await;
    let parent = department(
        &o.tenant,
        &path,
        json!({"name": "Ops", "locationId": site["id"]}),
    )
    .await;
    let child = department(
        &o.tenant,
        &path,
        json!({"name": "Ops East", "parentId": parent["id"]}),
    )
    .await;

    let parent_path = format!("{path}/{}", parent["id"].as_str().unwrap());
    let refused = o
        .tenant
        .send(Method::DELETE, &parent_path, None::<&()>)
        .await
        .expect_problem(StatusCode::CONFLICT, "DEPARTMENT_IN_USE");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains(child["id"].as_str().unwrap()),
        "{refused}"
    );
    let site_path = format!("{}/{}", o.locations(), site["id"].as_str().unwrap());
    let refused = o
        .tenant
        .send(Method::DELETE, &site_path, None::<&()>)
        .await
        .expect_problem(StatusCode::CONFLICT, "LOCATION_IN_USE");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains(parent["id"].as_str().unwrap()),
        "{refused}"
    );
    o.tenant
        .send(
            Method::DELETE,
            &format!("{site_path}?detach=maybe"),
            None::<&()>,
        )
        .await
        .expect_invalid("detach");

    o.tenant
        .delete(&format!("{site_path}?detach=true"), StatusCode::NO_CONTENT)
        .await;
    let now: Value = o.tenant.get(&parent_path, StatusCode::OK).await;
    assert_eq!(now["locationId"], Value::Null);
    assert_eq!(now["version"], 2);
    o.tenant
        .delete(
            &format!("{parent_path}?detach=true"),
            StatusCode::NO_CONTENT,
        )
        .await;
    let orphan: Value = o
        .tenant
        .get(
            &format!("{path}/{}", child["id"].as_str().unwrap()),
            StatusCode::OK,
        )
        .await;
    assert_eq!(orphan["parentId"], Value::Null);

    let updates = ctx.events_of(ev::DEPARTMENT_UPDATED).await;
    let changed: Vec<&Value> = updates
        .iter()
        .map(|e| &e["data"]["changedFields"])
        .collect();
    assert_eq!(changed, [&json!(["locationId"]), &json!(["parentId"])]);
    assert_eq!(ctx.events_of(ev::DEPARTMENT_DELETED).await.len(), 1);
    assert_eq!(ctx.events_of(ev::LOCATION_DELETED).await.len(), 1);
    ctx.assert_updates_name_their_changes().await;
}

#[tokio::test]
async fn departments_at_the_client_level_keep_to_their_client_and_version() {
    let ctx = Ctx::new().await;
    let o = ctx.owner().await;
    let other = ctx.owner().await;
    let path = format!(
        "/v1/customers/{}/clients/{}/departments",
        o.customer, o.client
    );
    let d = department(&o.clients, &path, json!({"name": "Buying"})).await;
    assert_eq!(d["clientId"], json!(o.client));
    let item = format!("{path}/{}", d["id"].as_str().unwrap());
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
        .send(Method::GET, &item, None::<&()>)
        .await
        .expect_problem(StatusCode::FORBIDDEN, "FORBIDDEN");
    ctx.client()
        .send(Method::GET, &item, None::<&()>)
        .await
        .expect_problem(StatusCode::UNAUTHORIZED, "NOT_AUTHORIZED");
    let at_customer = format!("{}/{}", departments(&o), d["id"].as_str().unwrap());
    o.tenant
        .send(Method::GET, &at_customer, None::<&()>)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "NOT_FOUND");

    let stale = ctx
        .req(Method::PATCH, &item, None)
        .bearer_auth(testkit::token(
            "e",
            Some(o.customer),
            &[Permission::EditClient],
        ))
        .header("if-match", "\"5\"")
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
    let renamed: Value = o
        .clients
        .patch(
            &item,
            &json!({"name": "Purchasing", "code": "P"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(renamed["version"], 2);
    let updates = ctx.events_of(ev::DEPARTMENT_UPDATED).await;
    assert_eq!(updates[0]["data"]["changedFields"], json!(["code", "name"]));
    let t = testkit::token("e", Some(o.customer), &[Permission::EditClient]);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let res = ctx
            .req(Method::POST, &path, Some(&t))
            .header("idempotency-key", "dept-1")
            .json(&json!({"name": "Retry"}))
            .send()
            .await
            .unwrap();
        ids.push(testkit::ok(res, StatusCode::CREATED).await["id"].clone());
    }
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ctx.events_of(ev::DEPARTMENT_CREATED).await.len(), 2);
}
