//! Cursor pagination: page sizes, opaque cursors, pages built from `limit + 1` rows.

use base64::Engine;
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use crate::error::ApiError;

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 200;

/// A page of a collection.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Validates `limit` (1..=200, default 50).
pub fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::field(
            "limit",
            format!("must be 1 to {MAX_PAGE_SIZE}"),
        )),
    }
}

/// An opaque cursor: base64url of the position's JSON.
pub fn encode_cursor<T: Serialize>(position: &T) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(position).unwrap_or_default())
}

/// The position a cursor holds. A cursor is the client's text: one that does not decode, or
/// whose position holds U+0000 (never in a cursor this service made), is a 422 on `cursor`.
pub fn decode_cursor<T: DeserializeOwned>(cursor: &str) -> Result<T, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .filter(|v| crate::error::text_with_nul(v, String::new()).is_none())
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| ApiError::field("cursor", "is not a cursor returned by this endpoint"))
}

/// Builds a page from `limit + 1` fetched rows.
pub fn page<T, P: Serialize>(mut rows: Vec<T>, limit: i64, position: impl Fn(&T) -> P) -> Page<T> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| encode_cursor(&position(r)))
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_and_pages() {
        let c = encode_cursor(&("2026-01-01T00:00:00Z", 7));
        let back: (String, i32) = decode_cursor(&c).unwrap();
        assert_eq!(back.1, 7);
        assert_eq!(
            decode_cursor::<(String, i32)>("!!").unwrap_err().errors[0].field,
            "cursor"
        );
        let p = page(vec![1, 2, 3], 2, |x| *x);
        assert_eq!(p.items, vec![1, 2]);
        assert!(p.next_cursor.is_some());
        let p = page(vec![1, 2], 2, |x| *x);
        assert!(p.next_cursor.is_none());
        assert!(page_limit(Some(201)).is_err());
        let nul = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"["a\u0000",1]"#);
        assert_eq!(
            decode_cursor::<(String, i32)>(&nul).unwrap_err().errors[0].field,
            "cursor"
        );
        assert_eq!(page_limit(None).unwrap(), 50);
    }
}
