//! RFC 9457 problem details with the platform's stable error codes.
//!
//! Every handler returns `Result<T, ApiError>`. Client errors carry a code from DESIGN §4 and,
//! for validation, one entry per offending field. Internal errors keep their cause for the log
//! and answer with a bare 500: a response never says why the server failed.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

mod body;
mod strict;

pub use body::{
    ApiBytes, ApiJson, BodyReadTimeout, parse_json, read_body, read_body_within, text_with_nul,
};

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One offending input field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON path of the field (`address.country`, `socialProfiles[1].url`) or query parameter.
    pub field: String,
    /// The rule it broke, in words.
    pub rule: String,
}

/// RFC 9457 problem details body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    /// Stable, machine-readable error code.
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: Option<String>,
    pub errors: Vec<FieldError>,
    /// The internal cause (logged, never sent). A boxed error, not an `anyhow::Error`: that
    /// captures a backtrace when `RUST_BACKTRACE` is set, for every error answered.
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    /// An answer decided before the handler's work (an idempotent replay), sent as it is.
    answered: Option<Box<Response>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: Some(detail.into()),
            errors: Vec::new(),
            source: None,
            answered: None,
        }
    }

    /// An answer that ends the request before its handler's work: the stored response of an
    /// idempotent request, replayed (see [`crate::http::idempotency`]). Not an error for the client.
    pub fn answered(res: Response) -> Self {
        Self {
            status: res.status(),
            code: "ANSWERED",
            detail: None,
            errors: Vec::new(),
            source: None,
            answered: Some(Box::new(res)),
        }
    }

    pub fn not_authorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "NOT_AUTHORIZED", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", detail)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("{what} not found"),
        )
    }

    pub fn key_mismatch(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "KEY_MISMATCH", detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "PRECONDITION_FAILED",
            detail,
        )
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", detail)
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "VALIDATION_FAILED",
            detail: Some("the request has invalid fields".into()),
            errors,
            source: None,
            answered: None,
        }
    }

    pub fn field(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self::validation(vec![FieldError {
            field: field.into(),
            rule: rule.into(),
        }])
    }

    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "INTERNAL",
            detail: None,
            errors: Vec::new(),
            source: Some(source.into()),
            answered: None,
        }
    }

    /// The error as an `anyhow::Error` (for background work), keeping an internal cause.
    pub fn into_anyhow(self) -> anyhow::Error {
        let what = format!("{} {}", self.code, self.detail.clone().unwrap_or_default());
        match self.source {
            Some(source) => anyhow::Error::from_boxed(source).context(what),
            None => anyhow::anyhow!(what),
        }
    }

    pub fn problem(&self) -> Problem {
        Problem {
            type_uri: format!(
                "urn:customer-platform:problem:{}",
                self.code.to_ascii_lowercase().replace('_', "-")
            ),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: self.status.as_u16(),
            code: self.code.to_string(),
            detail: self.detail.clone(),
            errors: self.errors.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.code)?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if matches!(e, sqlx::Error::PoolTimedOut) {
            tracing::warn!("database pool timed out");
            return Self::unavailable("the database is busy; retry shortly");
        }
        if is_connection_failure(&e) {
            tracing::warn!(error = %e, "the database connection failed");
            return Self::unavailable("the database is unreachable; retry shortly");
        }
        Self::internal(e)
    }
}

/// Whether `e` says the database could not be reached or went away (a retry may succeed), as
/// opposed to a statement it refused.
pub fn is_connection_failure(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        // Class 08 (connection exception), 57P01-57P03 (shutdown, crash, cannot connect now),
        // 53300 (too many connections).
        sqlx::Error::Database(d) => d.code().is_some_and(|c| {
            c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

impl From<anyhow::Error> for ApiError {
    /// A database error inside keeps its meaning (a lost connection is 503, a named constraint
    /// still maps through `on_constraint`).
    fn from(e: anyhow::Error) -> Self {
        match e.downcast::<sqlx::Error>() {
            Ok(db) => Self::from(db),
            Err(e) => Self::internal(e),
        }
    }
}

/// An error and its causes on one line (`a: b: c`), without a backtrace.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(res) = self.answered {
            return *res;
        }
        if let Some(source) = &self.source {
            tracing::error!(error = %Chain(source.as_ref()), "request failed");
        } else if self.status.is_server_error() {
            tracing::error!(
                code = self.code,
                detail = self.detail.as_deref().unwrap_or(""),
                "request failed"
            );
        }
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut res = (self.status, body).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res
    }
}

/// Maps named database constraint violations to client errors, in one place per store.
pub trait ResultExt<T> {
    fn on_constraint(self, name: &str, f: impl FnOnce() -> ApiError) -> Result<T, ApiError>;
}

impl<T, E: Into<ApiError>> ResultExt<T> for Result<T, E>
where
    E: AsConstraint,
{
    fn on_constraint(self, name: &str, f: impl FnOnce() -> ApiError) -> Result<T, ApiError> {
        match self {
            Ok(v) => Ok(v),
            Err(e) if e.constraint() == Some(name) => Err(f()),
            Err(e) => Err(e.into()),
        }
    }
}

pub trait AsConstraint {
    fn constraint(&self) -> Option<&str>;
}

impl AsConstraint for sqlx::Error {
    fn constraint(&self) -> Option<&str> {
        self.as_database_error().and_then(|d| d.constraint())
    }
}

impl AsConstraint for ApiError {
    fn constraint(&self) -> Option<&str> {
        let source = self.source.as_ref()?;
        source
            .downcast_ref::<sqlx::Error>()
            .and_then(|e| e.constraint())
    }
}

/// Collects per-field errors so a request reports every invalid field at once.
#[derive(Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, rule: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            rule: rule.into(),
        });
    }

    /// Keeps the value, or records the rule it broke.
    pub fn check<T, E: ToString>(&mut self, field: &str, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e.to_string());
                None
            }
        }
    }

    /// Length in characters of a required text, after trimming.
    pub fn text(&mut self, field: &str, value: &str, min: usize, max: usize) -> String {
        let t = value.trim();
        let n = t.chars().count();
        if n < min || n > max {
            if min > 0 && n == 0 {
                self.add(field, "must not be blank");
            } else {
                self.add(field, format!("must be {min} to {max} characters long"));
            }
        }
        t.to_string()
    }

    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_errors_keep_their_meaning_through_anyhow() {
        let lost = anyhow::Error::from(sqlx::Error::Io(std::io::Error::other("reset")));
        let e = ApiError::from(lost.context("loading the customer"));
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        let other = ApiError::from(anyhow::anyhow!("something else"));
        assert_eq!(other.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(other.into_anyhow().to_string().starts_with("INTERNAL"));
    }

    #[test]
    fn problem_body_has_code_and_type() {
        let p = ApiError::not_found("customer").problem();
        assert_eq!(p.status, 404);
        assert_eq!(p.code, "NOT_FOUND");
        assert_eq!(p.type_uri, "urn:customer-platform:problem:not-found");
    }
}
