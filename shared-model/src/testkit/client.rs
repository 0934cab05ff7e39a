//! A typed client for tests, so a test reads like the API it calls:
//!
//! ```ignore
//! let api = app.client().as_user(&token);
//! let created: Customer = api.post("/v1/customers", &body, StatusCode::CREATED).await;
//! let again: Customer = api.get(&format!("/v1/customers/{}", created.id), StatusCode::OK).await;
//! api.send(Method::GET, "/v1/customers/nope", None::<&()>).await.expect_invalid("customerId");
//! ```

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Calls one service, with or without a bearer token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// A response, read whole, to assert on.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Client {
    pub fn new(http: reqwest::Client, base: impl Into<String>) -> Client {
        Client {
            http,
            base: base.into(),
            token: None,
        }
    }

    /// The same client presenting `token`.
    pub fn as_user(&self, token: &str) -> Client {
        Client {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    /// Sends a request with an optional JSON body.
    pub async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Answer {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(b);
        }
        let res = r.send().await.expect("the service answers");
        Answer {
            status: res.status(),
            headers: res.headers().clone(),
            body: res.text().await.expect("a readable body"),
        }
    }

    /// `GET`, expecting `status` and a body of type `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str, status: StatusCode) -> T {
        self.send(Method::GET, path, None::<&()>)
            .await
            .expect(status)
    }

    /// `POST` of `body`, expecting `status` and a body of type `T`.
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        status: StatusCode,
    ) -> T {
        self.send(Method::POST, path, Some(body))
            .await
            .expect(status)
    }

    /// `PATCH` of `body`, expecting `status` and a body of type `T`.
    pub async fn patch<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        status: StatusCode,
    ) -> T {
        self.send(Method::PATCH, path, Some(body))
            .await
            .expect(status)
    }

    /// `DELETE`, expecting `status`.
    pub async fn delete(&self, path: &str, status: StatusCode) {
        let answer = self.send(Method::DELETE, path, None::<&()>).await;
        assert_eq!(answer.status, status, "DELETE {path}: {}", answer.body);
    }
}

impl Answer {
    /// Asserts `status` and parses the body as `T` (`()` for an empty one).
    pub fn expect<T: DeserializeOwned>(self, status: StatusCode) -> T {
        assert_eq!(self.status, status, "{}", self.body);
        let body = if self.body.is_empty() {
            "null"
        } else {
            &self.body
        };
        serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("the body is not what was expected ({e}): {}", self.body))
    }

    /// Asserts a problem document with `status` and `code`; returns it.
    pub fn expect_problem(self, status: StatusCode, code: &str) -> serde_json::Value {
        assert_eq!(
            self.headers
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some(crate::error::PROBLEM_JSON),
            "{} {}",
            self.status,
            self.body
        );
        let doc: serde_json::Value = self.expect(status);
        assert_eq!(doc["code"], code, "{doc}");
        doc
    }

    /// Asserts a 422 naming `field`; returns the problem.
    pub fn expect_invalid(self, field: &str) -> serde_json::Value {
        let doc = self.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED");
        assert!(
            doc["errors"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["field"] == field)),
            "expected an error on {field}: {doc}"
        );
        doc
    }
}
