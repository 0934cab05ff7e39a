//! What many tests start from: a tenant with client permissions, a business client's body, and
//! a request with a token and an optional JSON body.

use reqwest::Method;
use serde_json::{Value, json};
use shared_model::auth::Permission;
use shared_model::testkit;

use crate::{Ctx, consumer};

pub const CLIENT_PERMS: &[Permission] = &[
    Permission::ViewCustomer,
    Permission::EditCustomer,
    Permission::ViewClient,
    Permission::EditClient,
];

/// A customer, a token for it with client permissions, and its clients path.
pub async fn tenant_setup(ctx: &Ctx, key: &str) -> (String, String, String) {
    let c = ctx.create(consumer(key, "Tenant")).await;
    let id = c["id"].as_str().unwrap().to_string();
    let token = testkit::token("editor", Some(id.parse().unwrap()), CLIENT_PERMS);
    let path = format!("/v1/customers/{id}/clients");
    (id, token, path)
}

pub async fn send(
    ctx: &Ctx,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let r = ctx.req(method, path, Some(token));
    match body {
        Some(b) => r.json(&b),
        None => r,
    }
    .send()
    .await
    .unwrap()
}

pub fn acme_client() -> Value {
    json!({
        "type": "business",
        "name": "Globex",
        "email": "buyer@globex.example",
        "externalId": "erp-1",
        "businessProfile": {"industryGroup": "software_services"},
        "source": "referral",
        "assignee": "user-7"
    })
}

/// An individual lead's body.
pub fn person(first: &str, last: &str) -> Value {
    json!({"type": "individual", "firstName": first, "lastName": last, "status": "lead"})
}
