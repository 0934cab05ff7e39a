//! The body of `POST /v1/search` and its validation into the parts of a backend query: every
//! rule a request breaks is a 422 naming the field.

use serde::Deserialize;
use shared_model::error::{ApiError, Validator};
use utoipa::ToSchema;

use super::filter::{Filter, filter_expr};
use crate::index::Kind;
use crate::index::filter::Expr;
use crate::index::query::{Facet, Sort};

/// At most this many characters of text.
pub const MAX_TEXT: usize = 200;
/// At most this many hits a page.
pub const MAX_LIMIT: i64 = 100;
pub const DEFAULT_LIMIT: i64 = 20;

/// The order of the hits: `relevance` (the default), or a field, ascending, or descending
/// with a leading `-`.
#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema, PartialEq, Eq)]
pub enum SortName {
    #[default]
    #[serde(rename = "relevance")]
    Relevance,
    #[serde(rename = "name")]
    Name,
    #[serde(rename = "-name")]
    NameDesc,
    #[serde(rename = "createdAt")]
    CreatedAt,
    #[serde(rename = "-createdAt")]
    CreatedAtDesc,
    #[serde(rename = "updatedAt")]
    UpdatedAt,
    #[serde(rename = "-updatedAt")]
    UpdatedAtDesc,
}

impl SortName {
    pub fn sort(self) -> Sort {
        match self {
            SortName::Relevance => Sort::Relevance,
            SortName::Name => Sort::Name { descending: false },
            SortName::NameDesc => Sort::Name { descending: true },
            SortName::CreatedAt => Sort::CreatedAt { descending: false },
            SortName::CreatedAtDesc => Sort::CreatedAt { descending: true },
            SortName::UpdatedAt => Sort::UpdatedAt { descending: false },
            SortName::UpdatedAtDesc => Sort::UpdatedAt { descending: true },
        }
    }

    /// Its name, as a cursor records it.
    pub fn as_str(self) -> &'static str {
        match self {
            SortName::Relevance => "relevance",
            SortName::Name => "name",
            SortName::NameDesc => "-name",
            SortName::CreatedAt => "createdAt",
            SortName::CreatedAtDesc => "-createdAt",
            SortName::UpdatedAt => "updatedAt",
            SortName::UpdatedAtDesc => "-updatedAt",
        }
    }
}

/// The body of `POST /v1/search`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchRequest {
    /// The text searched (at most 200 characters; its first 10 words count). Empty or absent:
    /// every document the scope and the filter let through, most recently updated first.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub q: String,
    /// The kinds searched (default: all three, as far as the caller reaches).
    #[schema(min_items = 1, max_items = 3)]
    pub kinds: Option<Vec<Kind>>,
    pub filter: Option<Filter>,
    /// Fields whose most frequent values (at most 20 each) are counted over every hit.
    #[serde(default)]
    #[schema(max_items = 11)]
    pub facets: Vec<Facet>,
    #[serde(default)]
    pub sort: SortName,
    /// Hits a page: 1 to 100, default 20.
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page, with the same `sort`.
    pub cursor: Option<String>,
}

/// What a request asks, validated: the parts of the backend query it decides.
#[derive(Debug)]
pub struct Asked {
    pub text: String,
    pub kinds: Vec<Kind>,
    pub filter: Expr,
    pub facets: Vec<Facet>,
    pub sort: SortName,
    pub limit: i64,
}

impl SearchRequest {
    /// Validates the request: 422 naming every field that breaks a rule.
    pub fn validate(&self) -> Result<Asked, ApiError> {
        let mut v = Validator::new();
        if self.q.chars().count() > MAX_TEXT {
            v.add("q", format!("must be at most {MAX_TEXT} characters long"));
        }
        let kinds: Vec<Kind> = match &self.kinds {
            None => vec![Kind::Customer, Kind::Client, Kind::Contact],
            Some(list) => {
                if list.is_empty() {
                    v.add("kinds", "must name at least one kind");
                }
                for (i, k) in list.iter().enumerate() {
                    if list[..i].contains(k) {
                        v.add(format!("kinds[{i}]"), "must not repeat a kind");
                    }
                }
                list.clone()
            }
        };
        for (i, f) in self.facets.iter().enumerate() {
            if self.facets[..i].contains(f) {
                v.add(format!("facets[{i}]"), "must not repeat a facet");
            }
        }
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            v.add("limit", format!("must be 1 to {MAX_LIMIT}"));
        }
        let filter = match &self.filter {
            None => Expr::True,
            Some(f) => filter_expr(f, "filter", &mut v),
        };
        v.finish()?;
        Ok(Asked {
            text: self.q.clone(),
            kinds,
            filter,
            facets: self.facets.clone(),
            sort: self.sort,
            limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::filter::{Bound, Column, Value};

    fn asked(body: serde_json::Value) -> Result<Asked, ApiError> {
        serde_json::from_value::<SearchRequest>(body)
            .expect("parses")
            .validate()
    }

    fn fields(body: serde_json::Value) -> Vec<String> {
        let err = asked(body).expect_err("invalid");
        err.errors.iter().map(|f| f.field.clone()).collect()
    }

    #[test]
    fn a_filter_becomes_an_expression() {
        let a = asked(serde_json::json!({
            "q": "acme",
            "filter": {"and": [
                {"eq": {"field": "country", "value": "DE"}},
                {"not": {"tags": {"any": ["vip"]}}},
                {"range": {"field": "version", "gte": 2}},
            ]},
        }))
        .unwrap();
        assert_eq!(
            a.filter,
            Expr::And(vec![
                Expr::Eq(Column::Country, Value::Text("DE".into())),
                Expr::Not(Box::new(Expr::HasAny(
                    Column::Tags,
                    vec![Value::Text("vip".into())]
                ))),
                Expr::And(vec![Expr::Range(
                    Column::Version,
                    Bound::Gte,
                    Value::Int(2)
                )]),
            ])
        );
        assert_eq!(a.limit, DEFAULT_LIMIT);
        assert_eq!(a.kinds.len(), 3);
    }

    #[test]
    fn every_broken_rule_names_its_field() {
        assert_eq!(
            fields(serde_json::json!({
                "q": "x".repeat(201),
                "kinds": ["client", "client"],
                "facets": ["tags", "tags"],
                "limit": 101,
                "filter": {"or": [
                    {"eq": {"field": "customerId", "value": "nope"}},
                    {"in": {"field": "kind", "values": ["customer", "lead"]}},
                    {"range": {"field": "createdAt", "gte": "yesterday"}},
                    {"range": {"field": "version"}},
                    {"groups": {"all": ["g"]}},
                    {"and": []},
                ]},
            })),
            [
                "q",
                "kinds[1]",
                "facets[1]",
                "limit",
                "filter.or[0].eq.value",
                "filter.or[1].in.values[1]",
                "filter.or[2].range.gte",
                "filter.or[3].range",
                "filter.or[4].groups.all[0]",
                "filter.or[5].and",
            ]
        );
    }

    #[test]
    fn filters_are_bounded_in_depth_and_size() {
        let mut f = serde_json::json!({"enabled": true});
        for _ in 0..6 {
            f = serde_json::json!({"not": f});
        }
        assert_eq!(
            fields(serde_json::json!({"filter": f})),
            ["filter.not.not.not.not.not.not"]
        );
        let many: Vec<_> = (0..20)
            .map(|_| serde_json::json!({"or": [{"enabled": true}, {"enabled": false}]}))
            .collect();
        assert_eq!(
            fields(serde_json::json!({"filter": {"and": many}})),
            ["filter.and[16].or[0]"]
        );
    }
}
