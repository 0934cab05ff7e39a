//! One service under test: its own database, broker names, configuration and running instance,
//! with the requests and outbox reads every service's tests make. A service's test context
//! wraps a `Harness` and adds its own fixtures.

use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use sqlx::Row;

use super::{Client, TestApp, TestDb};
use crate::config::{AmqpConfig, KitConfig};
use crate::service::ServiceSpec;

pub struct Harness {
    pub app: TestApp,
    pub db: TestDb,
    pub amqp: AmqpConfig,
    pub cfg: KitConfig,
}

impl Harness {
    /// Starts `spec` on a new database and broker prefix, relay off, with the configuration
    /// `adjust` changes first.
    pub async fn start(spec: &'static ServiceSpec, adjust: impl FnOnce(&mut KitConfig)) -> Self {
        let db = TestDb::new(&(spec.migrations)()).await;
        let amqp = super::amqp_config(spec.name);
        let mut cfg = super::config(&db, amqp.clone(), false);
        adjust(&mut cfg);
        let app = TestApp::spawn(spec, cfg.clone()).await;
        Harness { app, db, amqp, cfg }
    }

    /// A typed client of the service, without a token.
    pub fn client(&self) -> Client {
        self.app.client()
    }

    /// A request to the service, with `token` as its bearer token if given.
    pub fn req(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let r = self.app.http.request(method, self.app.url(path));
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// Sends a request with `token` and, if given, a JSON `body`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Response {
        let r = self.req(method, path, Some(token));
        match body {
            Some(b) => r.json(&b),
            None => r,
        }
        .send()
        .await
        .unwrap()
    }

    /// The JSON answer of a `GET` made with `token`.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        self.req(Method::GET, path, Some(token))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Every event in the outbox, oldest first, as (routing key, CloudEvent).
    pub async fn outbox(&self) -> Vec<(String, Value)> {
        let mut su = self.db.superuser().await;
        sqlx::query("SELECT routing_key, payload FROM outbox ORDER BY id")
            .fetch_all(&mut su)
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                let payload: Vec<u8> = r.get("payload");
                (
                    r.get("routing_key"),
                    serde_json::from_slice(&payload).unwrap(),
                )
            })
            .collect()
    }

    /// Asserts that every `*.updated` event written so far names the fields it changed (and
    /// that there was one to check).
    pub async fn assert_updates_name_their_changes(&self) {
        let mut updates = 0;
        for (kind, event) in self.outbox().await {
            if kind.ends_with(".updated") {
                updates += 1;
                let fields = event["data"]["changedFields"].as_array();
                assert!(
                    fields.is_some_and(|f| !f.is_empty() && f.iter().all(|x| x.is_string())),
                    "{kind} without changedFields: {event}"
                );
            }
        }
        assert!(updates > 0, "no update event to check");
    }
}
