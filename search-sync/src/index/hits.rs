//! A search's result row as a [`Hit`]: the document, its rank keys, its position for the
//! next page and, for a query with words, the ranges its kept terms match (for highlighting).

use shared_model::error::ApiError;
use shared_model::ids::GroupId;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::highlight::{self, Terms};
use super::query::{After, Hit, Sort, SortKey};
use super::{Document, Kind};

fn kind_of(s: &str) -> Result<Kind, ApiError> {
    match s {
        "customer" => Ok(Kind::Customer),
        "client" => Ok(Kind::Client),
        "contact" => Ok(Kind::Contact),
        other => Err(ApiError::internal(format!(
            "unknown document kind {other:?}"
        ))),
    }
}

/// The hit a row of the main statement describes.
pub(super) fn hit(row: &PgRow, sort: Sort, kept: Option<&Terms>) -> Result<Hit, ApiError> {
    let kind = kind_of(row.get("kind"))?;
    let id: uuid::Uuid = row.get("id");
    let key = match sort {
        Sort::Relevance => SortKey::Relevance(row.get("k1"), row.get("k2"), row.get("k3")),
        Sort::Name { .. } => SortKey::Name(row.get("kname")),
        Sort::CreatedAt { .. } | Sort::UpdatedAt { .. } => SortKey::Time(row.get("ktime")),
    };
    let groups: Vec<uuid::Uuid> = row.get("groups");
    let at = |column: &str| {
        row.get::<Option<time::OffsetDateTime>, _>(column)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    };
    let doc = Document {
        kind,
        id,
        customer_id: row.get("customer_id"),
        client_id: row.get("client_id"),
        parent_id: row.get("parent_id"),
        version: row.get("version"),
        name: row.get("name"),
        email: row.get("email"),
        phone: row.get("phone"),
        domain: row.get("domain"),
        external_id: row.get("external_id"),
        codes: row.get("codes"),
        doc_type: row.get("type"),
        status: row.get("status"),
        enabled: row.get("enabled"),
        tags: row.get("tags"),
        assignee: row.get("assignee"),
        country: row.get("country"),
        city: row.get("city"),
        industry_sector: row.get("industry_sector"),
        industry_group: row.get("industry_group"),
        size_range: row.get("size_range"),
        created_at: at("created_at"),
        updated_at: at("updated_at"),
    };
    let matches = match kept {
        Some(terms) => highlight::matches(
            terms,
            [("name", Some(&doc.name)), ("city", doc.city.as_deref())],
            &[
                ("email", doc.email.as_deref()),
                ("phone", doc.phone.as_deref()),
                ("domain", doc.domain.as_deref()),
                ("externalId", doc.external_id.as_deref()),
            ],
        ),
        None => Vec::new(),
    };
    let h = Hit {
        doc,
        groups: groups.into_iter().map(GroupId).collect(),
        tiers: row.get("tiers"),
        outside_name: row.get("outside_name"),
        matches,
        position: After { key, kind, id },
    };
    Ok(h)
}
