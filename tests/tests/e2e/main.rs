//! End-to-end tests against the real PostgreSQL and RabbitMQ: the customer-api binary
//! publishing CloudEvents, and the kit's outbox relay and consumer under concurrency, failure
//! and a broker restart.

mod audit;
mod consumer;
mod customer_events;
mod keys;
mod org;
mod otlp;
mod reindex;
mod relay;
mod search;
mod services;

pub use shared_model::testkit::{listen, receive};

/// `method url` with `token` (and a JSON `body`); asserts a success and returns the JSON body
/// (null when there is none).
pub async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut r = http.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let res = r.send().await.unwrap();
    assert!(res.status().is_success(), "{url}: {}", res.status());
    res.json().await.unwrap_or(serde_json::Value::Null)
}
