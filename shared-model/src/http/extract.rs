//! Extractors and response helpers: query strings and paths with 422s naming the parameter,
//! `ETag`/`If-Match`, and PATCH fields that tell absent from `null`.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, FieldError};

/// Query-string extractor reporting the offending parameter as a 422.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        // Every query parameter passes here: none may hold U+0000 (`%00`), which PostgreSQL
        // cannot store or compare.
        if let Some((name, _)) =
            form_urlencoded::parse(q.as_bytes()).find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(ApiError::field(
                name.into_owned(),
                "must not contain the NUL character (U+0000)",
            ));
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                let msg = e.into_inner().to_string();
                let field = if path == "." {
                    msg.split('`').nth(1).unwrap_or("query").to_string()
                } else {
                    path
                };
                ApiError::field(field, msg)
            })
    }
}

/// Path extractor: a malformed id is a 422 naming the parameter.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // The parameter to blame if parsing fails: the first whose value is not a UUID.
        let culprit = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .ok()
            .and_then(|raw| {
                raw.iter()
                    .find(|(_, v)| uuid::Uuid::parse_str(v).is_err())
                    .map(|(k, _)| k.to_string())
            });
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|_| {
                let field = culprit.unwrap_or_else(|| "path".into());
                ApiError::validation(vec![FieldError {
                    field,
                    rule: "must be a UUID".into(),
                }])
            })
    }
}

// ---------------------------------------------------------------------------------------------
// ETag / If-Match

/// The strong ETag of an entity version.
pub fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("a number is a valid header value")
}

/// A parsed `If-Match` header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IfMatch(Option<Vec<i64>>);

impl IfMatch {
    /// 412 unless the header is absent, `*`, or lists `version`.
    pub fn check(&self, version: i64) -> Result<(), ApiError> {
        match &self.0 {
            Some(list) if !list.contains(&version) => Err(ApiError::precondition_failed(format!(
                "If-Match does not match the current version ({version})"
            ))),
            _ => Ok(()),
        }
    }

    pub fn is_present(&self) -> bool {
        self.0.is_some()
    }
}

pub fn parse_if_match(headers: &HeaderMap) -> IfMatch {
    let Some(v) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return IfMatch(None);
    };
    if v.trim() == "*" {
        return IfMatch(None);
    }
    let list = v
        .split(',')
        .filter_map(|t| {
            t.trim()
                .trim_start_matches("W/")
                .trim_matches('"')
                .parse()
                .ok()
        })
        .collect();
    // A header that names no version we could produce matches nothing.
    IfMatch(Some(list))
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parse_if_match(&parts.headers))
    }
}

/// A JSON response with the entity's `ETag`.
pub fn with_etag<T: Serialize>(status: StatusCode, version: i64, body: &T) -> Response {
    let mut res = (status, Json(body)).into_response();
    res.headers_mut().insert(header::ETAG, etag(version));
    res
}

/// 201 with `ETag` and `Location`.
pub fn created<T: Serialize>(location: String, version: i64, body: &T) -> Response {
    let mut res = with_etag(StatusCode::CREATED, version, body);
    if let Ok(loc) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, loc);
    }
    res
}

/// Deserialize helper for optional-nullable PATCH fields: absent, `null`, or a value.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(d).map(|o| o.map_or(Patch::Null, Patch::Value))
    }
}

impl<T> Patch<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Patch::Absent)
    }

    /// Merges into `field`: absent leaves it, null clears it, a value replaces it.
    pub fn apply(self, field: &mut Option<T>) {
        match self {
            Patch::Absent => {}
            Patch::Null => *field = None,
            Patch::Value(x) => *field = Some(x),
        }
    }

    /// The patch with its value mapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Patch<U> {
        match self {
            Patch::Absent => Patch::Absent,
            Patch::Null => Patch::Null,
            Patch::Value(x) => Patch::Value(f(x)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_parsing() {
        let mut h = HeaderMap::new();
        assert!(parse_if_match(&h).check(3).is_ok());
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"3\""));
        assert!(parse_if_match(&h).check(3).is_ok());
        assert_eq!(
            parse_if_match(&h).check(4).unwrap_err().status,
            StatusCode::PRECONDITION_FAILED
        );
        h.insert(header::IF_MATCH, HeaderValue::from_static("W/\"1\", \"4\""));
        assert!(parse_if_match(&h).check(4).is_ok());
        h.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        assert!(parse_if_match(&h).check(9).is_ok());
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"garbage\""));
        assert!(parse_if_match(&h).check(1).is_err());
    }

    #[test]
    fn patch_distinguishes_absent_null_value() {
        #[derive(Deserialize)]
        struct P {
            #[serde(default)]
            a: Patch<String>,
        }
        assert_eq!(serde_json::from_str::<P>("{}").unwrap().a, Patch::Absent);
        assert_eq!(
            serde_json::from_str::<P>(r#"{"a":null}"#).unwrap().a,
            Patch::Null
        );
        assert_eq!(
            serde_json::from_str::<P>(r#"{"a":"x"}"#).unwrap().a,
            Patch::Value("x".into())
        );
    }
}
