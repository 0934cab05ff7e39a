//! Helpers every resource of customer-api shares: the deactivated-customer rule,
//! validation of shared shapes and response building.

use serde::Serialize;
use shared_model::error::{ApiError, Validator};
use shared_model::events::customer::BusinessProfile;
use shared_model::ids::CustomerId;
use shared_model::model::CustomerStatus;
use sqlx::PgConnection;

/// The customer exists (for this caller) and accepts writes: 404 if it is invisible, 409
/// `CUSTOMER_DEACTIVATED` if it is deactivated. Holds a share lock on the customer row until
/// the transaction ends, so a deactivation cannot slip in between the check and the write.
pub async fn ensure_writable(
    conn: &mut PgConnection,
    customer: CustomerId,
) -> Result<(), ApiError> {
    match visible_status(conn, customer, true).await? {
        None => Err(ApiError::not_found("customer")),
        Some(CustomerStatus::Deactivated) => Err(deactivated()),
        Some(CustomerStatus::Active) => Ok(()),
    }
}

/// 409 `CUSTOMER_DEACTIVATED`.
pub fn deactivated() -> ApiError {
    ApiError::conflict(
        "CUSTOMER_DEACTIVATED",
        "the customer is deactivated: its data can be read but not changed until it is reactivated",
    )
}

/// The customer exists for this caller (404 otherwise).
pub async fn ensure_visible(conn: &mut PgConnection, customer: CustomerId) -> Result<(), ApiError> {
    visible_status(conn, customer, false)
        .await?
        .map(|_| ())
        .ok_or_else(|| ApiError::not_found("customer"))
}

async fn visible_status(
    conn: &mut PgConnection,
    customer: CustomerId,
    lock: bool,
) -> Result<Option<CustomerStatus>, ApiError> {
    let sql = if lock {
        "SELECT status FROM customers WHERE customer_id = $1 FOR SHARE"
    } else {
        "SELECT status FROM customers WHERE customer_id = $1"
    };
    Ok(sqlx::query_scalar(sql)
        .bind(customer)
        .fetch_optional(conn)
        .await?)
}

/// Industry sector/group consistency, social profiles and the external id of a business
/// profile under `at`; fills the sector from the group.
pub fn validate_profile(v: &mut Validator, p: &mut BusinessProfile, at: &str) {
    match (p.industry_sector, p.industry_group) {
        (Some(sector), Some(group)) if group.sector() != sector => v.add(
            format!("{at}.industryGroup"),
            format!("{group} does not belong to the sector {sector}"),
        ),
        (None, Some(group)) => p.industry_sector = Some(group.sector()),
        _ => {}
    }
    if p.social_profiles.len() > 6 {
        v.add(
            format!("{at}.socialProfiles"),
            "must have at most 6 entries",
        );
    }
    for (i, s) in p.social_profiles.iter().enumerate() {
        if p.social_profiles[..i]
            .iter()
            .any(|o| o.platform == s.platform)
        {
            v.add(
                format!("{at}.socialProfiles[{i}].platform"),
                "must not repeat a platform",
            );
        }
    }
    if let Some(ext) = &p.external_id {
        let t = v.text(&format!("{at}.externalId"), ext, 1, 128);
        p.external_id = Some(t);
    }
}

/// An optional free text: trimmed, `min..=max` characters.
pub fn optional_text(
    v: &mut Validator,
    field: &str,
    value: Option<String>,
    max: usize,
) -> Option<String> {
    value.map(|s| v.text(field, &s, 1, max))
}

/// Top-level JSON fields whose values differ, ignoring bookkeeping fields.
pub fn changed_fields<T: Serialize>(before: &T, after: &T) -> Result<Vec<String>, ApiError> {
    shared_model::events::changed_fields(before, after).map_err(ApiError::internal)
}

/// Escapes `%`, `_` and `\` for a LIKE pattern.
pub fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
