//! Request bodies: reading them within the read timeout and the body limit, and parsing JSON
//! objects with a 422 naming the offending field.

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::ApiError;

/// JSON body extractor: requires `application/json`, rejects unknown fields (the request types
/// use `deny_unknown_fields`) and reports the path of the first offending field as 422.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let mime = v
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "the body must be application/json",
            ));
        }
        let bytes = read_body(req).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Raw body extractor (e.g. an uploaded image), read as [`read_body`] reads it.
pub struct ApiBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        read_body(req).await.map(ApiBytes)
    }
}

/// How long a request's body may take to arrive, set by the HTTP stack from
/// `http.body_read_timeout_ms` on every request with a body.
#[derive(Clone, Copy, Debug)]
pub struct BodyReadTimeout(pub std::time::Duration);

/// Reads a request's whole body: 408 if it has not arrived within its [`BodyReadTimeout`]
/// (10 s if none is set), 413 over the body limit, 400 if the connection fails. The timer is
/// armed only if the body is not there yet, as a request's usually is.
pub async fn read_body(req: Request) -> Result<axum::body::Bytes, ApiError> {
    let timeout = req.extensions().get::<BodyReadTimeout>().copied();
    read_body_within(req.into_body(), timeout).await
}

/// [`read_body`] of a body taken from its request.
pub async fn read_body_within(
    body: axum::body::Body,
    timeout: Option<BodyReadTimeout>,
) -> Result<axum::body::Bytes, ApiError> {
    let limit = timeout.map_or(std::time::Duration::from_secs(10), |t| t.0);
    // The body limit is the HTTP stack's (a body over it fails the read with 413).
    match tokio::time::timeout(limit, axum::body::to_bytes(body, usize::MAX)).await {
        Ok(read) => read.map_err(body_error),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "REQUEST_TIMEOUT",
            "the request body did not arrive in time",
        )),
    }
}

/// The answer to a request body that could not be read: 413 over the body limit, 400
/// otherwise.
fn body_error(e: axum::Error) -> ApiError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "the request body is too large",
            );
        }
        cause = c.source();
    }
    ApiError::bad_request("BODY_UNREADABLE", "the request body could not be read")
}

/// Deserializes a JSON object body, naming the offending field on failure.
///
/// Every body passes here, so the rules for all of them are kept here: the body is one JSON
/// object (an array is not mapped onto a struct's fields by position, at any depth), and no text in it (keys, values,
/// free-form JSON included) holds U+0000, which PostgreSQL cannot store.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | None => {}
        Some(_) => {
            return Err(ApiError::field("body", "must be a JSON object"));
        }
    }
    // U+0000 can only be written as an escape; look closer only where one may be.
    if contains_nul_escape(bytes)
        && let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes)
        && let Some(field) = text_with_nul(&value, String::new())
    {
        return Err(ApiError::field(
            field,
            "must not contain the NUL character (U+0000)",
        ));
    }
    // A body without an array is read straight from its bytes. One with an array is read
    // whole and then through `Strict`, where a struct given as an array (serde's sequence
    // form, which no schema allows) is refused.
    let floats = |err: &serde_path_to_error::Error<serde_json::Error>| {
        err.inner()
            .to_string()
            .starts_with("invalid type: floating point")
    };
    if !bytes.contains(&b'[') {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        match serde_path_to_error::deserialize(de) {
            Ok(v) => return Ok(v),
            Err(err) if !floats(&err) => {
                return Err(field_error(err.path().to_string(), err.into_inner()));
            }
            Err(_) => {}
        }
    }
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| field_error(".".into(), e))?;
    match serde_path_to_error::deserialize(super::strict::Strict(&value)) {
        Ok(v) => Ok(v),
        // JSON has one number type: `5.0` is the integer 5, as JSON Schema says. A float where
        // an integer is asked is read again with whole-number floats as integers (only on this
        // error path, so other bodies are read once).
        Err(err) if floats(&err) => {
            whole_floats_as_integers(&mut value);
            serde_path_to_error::deserialize(super::strict::Strict(&value))
                .map_err(|err| field_error(err.path().to_string(), err.into_inner()))
        }
        Err(err) => Err(field_error(err.path().to_string(), err.into_inner())),
    }
}

/// A number with no fractional part that fits an `i64` (or a `u64`) becomes that integer.
fn whole_floats_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            // `i64::MAX as f64` and `u64::MAX as f64` round up to 2^63 and 2^64: the exclusive
            // bounds are exact.
            if f.fract() == 0.0 && (i64::MIN as f64..i64::MAX as f64).contains(&f) {
                *value = Value::from(f as i64);
            } else if f.fract() == 0.0 && (0.0..u64::MAX as f64).contains(&f) {
                *value = Value::from(f as u64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_floats_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(whole_floats_as_integers),
        _ => {}
    }
}

/// The 400 or 422 of a body that does not deserialize, `path` naming where.
fn field_error(path: String, inner: serde_json::Error) -> ApiError {
    if inner.is_syntax() || inner.is_eof() {
        return ApiError::bad_request(
            "MALFORMED_JSON",
            format!("the body is not valid JSON: {inner}"),
        );
    }
    let msg = inner.to_string();
    // serde appends " at line L column C"; the field path says where.
    let rule = msg.split(" at line ").next().unwrap_or(&msg).to_string();
    let field = if path == "." {
        unknown_field(&rule).unwrap_or_default()
    } else {
        path
    };
    let field = missing_field(&rule)
        .map(|m| join_path(&field, &m))
        .unwrap_or(field);
    ApiError::field(field, rule)
}

/// Whether `bytes` hold `\u0000` (in any case of hex digits).
fn contains_nul_escape(bytes: &[u8]) -> bool {
    bytes.windows(6).any(|w| w == br"\u0000")
}

/// The path (`a.b[2]`, or `body` for the document itself) of the first text in `value`, key or
/// string, that holds U+0000.
pub fn text_with_nul(value: &serde_json::Value, path: String) -> Option<String> {
    let here = || {
        if path.is_empty() {
            "body".to_string()
        } else {
            path.clone()
        }
    };
    match value {
        serde_json::Value::String(s) if s.contains('\0') => Some(here()),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| text_with_nul(v, format!("{}[{i}]", here()))),
        serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| {
            let field = join_path(&path, k);
            if k.contains('\0') {
                Some(field)
            } else {
                text_with_nul(v, field)
            }
        }),
        _ => None,
    }
}

fn unknown_field(rule: &str) -> Option<String> {
    rule.strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
        .map(str::to_string)
}

fn missing_field(rule: &str) -> Option<String> {
    rule.strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
        .map(str::to_string)
}

fn join_path(base: &str, leaf: &str) -> String {
    if base.is_empty() || base == "." {
        leaf.to_string()
    } else {
        format!("{base}.{leaf}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Body {
        name: String,
        address: Option<Addr>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Addr {
        city: String,
    }

    #[test]
    fn names_the_offending_field() {
        let e = parse_json::<Body>(br#"{"name":"a","address":{"city":3}}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.errors[0].field, "address.city");

        let e = parse_json::<Body>(br#"{"name":"a","colour":"red"}"#).unwrap_err();
        assert_eq!(e.errors[0].field, "colour");
        assert!(e.errors[0].rule.starts_with("unknown field"));

        let e = parse_json::<Body>(br#"{"address":{"city":"x"}}"#).unwrap_err();
        assert_eq!(e.errors[0].field, "name");

        let e = parse_json::<Body>(br#"{"name":"a","address":{}}"#).unwrap_err();
        assert_eq!(e.errors[0].field, "address.city");

        let e = parse_json::<Body>(b"{nope").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_body_is_an_object() {
        let e = parse_json::<Body>(br#" ["a", null]"#).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.errors[0].field, "body");
        assert_eq!(e.errors[0].rule, "must be a JSON object");
        assert!(parse_json::<Body>(b"\"a\"").is_err());
        assert!(parse_json::<Body>(br#" {"name":"a"}"#).is_ok());
    }

    #[test]
    fn nul_in_any_text_is_refused_naming_the_field() {
        let e = parse_json::<Body>(br#"{"name":"a\u0000b"}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.errors[0].field, "name");
        let e = parse_json::<Body>(br#"{"name":"a","address":{"city":"\u0000"}}"#).unwrap_err();
        assert_eq!(e.errors[0].field, "address.city");
        let free: serde_json::Value =
            serde_json::from_str(r#"{"feedback":{"notes":["ok","x\u0000"]}}"#).unwrap();
        assert_eq!(
            text_with_nul(&free, String::new()).as_deref(),
            Some("feedback.notes[1]")
        );
        let key: serde_json::Value = serde_json::from_str(r#"{"a\u0000":1}"#).unwrap();
        assert_eq!(
            text_with_nul(&key, String::new()).as_deref(),
            Some("a\u{0}")
        );
        // An escaped backslash before "u0000" is no NUL.
        assert!(parse_json::<Body>(br#"{"name":"a\\u0000"}"#).is_ok());
    }

    #[test]
    fn a_whole_number_float_is_an_integer() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Page {
            limit: i64,
            small: Option<i16>,
            items: Vec<u32>,
        }
        let p: Page = parse_json(br#"{"limit": 137.0, "small": -2e0, "items": [1.0, 2]}"#).unwrap();
        assert_eq!((p.limit, p.small, p.items), (137, Some(-2), vec![1, 2]));
        let e = parse_json::<Page>(br#"{"limit": 1.5, "items": []}"#).unwrap_err();
        assert_eq!(e.errors[0].field, "limit");
        let e = parse_json::<Page>(br#"{"limit": 1, "small": 1e30, "items": []}"#).unwrap_err();
        assert_eq!(e.errors[0].field, "small");
        let e = parse_json::<Page>(br#"{"limit": 1.0, "items": [], "other": 1}"#).unwrap_err();
        assert_eq!(e.errors[0].field, "other");
    }
}
