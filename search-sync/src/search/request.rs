//! The body of `POST /v1/search` and its validation into a backend [`Query`]: every rule a
//! request breaks is a 422 naming the field (`filter.and[1].in.values[0]`).

use serde::Deserialize;
use shared_model::error::{ApiError, Validator};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use crate::index::Kind;
use crate::index::filter::{Bound, Column, Expr, Value};
use crate::index::query::{Facet, Sort};

/// At most this many characters of text.
pub const MAX_TEXT: usize = 200;
/// At most this many hits a page.
pub const MAX_LIMIT: i64 = 100;
pub const DEFAULT_LIMIT: i64 = 20;
/// A filter has at most this many conditions in all, nested at most this deep, and a list at
/// most this many values.
pub const MAX_CONDITIONS: usize = 50;
pub const MAX_DEPTH: usize = 6;
pub const MAX_VALUES: usize = 100;

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

/// A text field compared by `eq` and `in`: exactly, case included, as the document holds it
/// (`country` is an ISO 3166-1 code such as `DE`; `kind` one of the kinds; `customerId` and
/// `clientId` UUIDs).
#[derive(Clone, Copy, Debug, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum TextField {
    Kind,
    Type,
    Status,
    Country,
    City,
    IndustrySector,
    IndustryGroup,
    SizeRange,
    Assignee,
    Email,
    Domain,
    ExternalId,
    CustomerId,
    ClientId,
}

impl TextField {
    fn column(self) -> Column {
        match self {
            TextField::Kind => Column::Kind,
            TextField::Type => Column::Type,
            TextField::Status => Column::Status,
            TextField::Country => Column::Country,
            TextField::City => Column::City,
            TextField::IndustrySector => Column::IndustrySector,
            TextField::IndustryGroup => Column::IndustryGroup,
            TextField::SizeRange => Column::SizeRange,
            TextField::Assignee => Column::Assignee,
            TextField::Email => Column::Email,
            TextField::Domain => Column::Domain,
            TextField::ExternalId => Column::ExternalId,
            TextField::CustomerId => Column::CustomerId,
            TextField::ClientId => Column::ClientId,
        }
    }
}

/// `{"field": ..., "value": ...}`
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Equals {
    pub field: TextField,
    #[schema(min_length = 1, max_length = 200)]
    pub value: String,
}

/// 1 to 100 values, each 1 to 200 characters (tags: 1 to 50; groups: UUIDs).
#[derive(Clone, Debug, Deserialize)]
#[serde(transparent)]
pub struct Values(pub Vec<String>);

impl utoipa::PartialSchema for Values {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
        ArrayBuilder::new()
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(MAX_TEXT)),
            )
            .description(Some(
                "1 to 100 values, each 1 to 200 characters (tags: 1 to 50; groups: UUIDs)",
            ))
            .min_items(Some(1))
            .max_items(Some(MAX_VALUES))
            .into()
    }
}

impl ToSchema for Values {}

/// `{"field": ..., "values": [...]}`
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OneOf {
    pub field: TextField,
    pub values: Values,
}

/// A field compared by `range`: a time (RFC 3339) or the version (an integer).
#[derive(Clone, Copy, Debug, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum RangeField {
    CreatedAt,
    UpdatedAt,
    Version,
}

/// A bound of a range: an RFC 3339 time for `createdAt` and `updatedAt`, an integer for
/// `version`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RangeValue {
    Number(i64),
    Time(String),
}

/// `{"field": ..., "gte": ..., "lt": ...}`: at least one bound.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Between {
    pub field: RangeField,
    pub gt: Option<RangeValue>,
    pub gte: Option<RangeValue>,
    pub lt: Option<RangeValue>,
    pub lte: Option<RangeValue>,
}

/// `{"any": [...]}` (at least one of the values) or `{"all": [...]}` (every one).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Members {
    Any(Values),
    All(Values),
}

/// A condition on documents: exactly one of its keys. Conditions nest at most 6 deep, 50 in
/// all; a list holds 1 to 100 values.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(no_recursion)]
pub enum Filter {
    /// Every condition holds (1 to 20).
    And(Vec<Filter>),
    /// At least one holds (1 to 20).
    Or(Vec<Filter>),
    /// The condition does not hold. A comparison with a field a document lacks is neither
    /// true nor false, so `not` of it does not hold either (as in SQL).
    Not(Box<Filter>),
    Eq(Equals),
    In(OneOf),
    Range(Between),
    /// Whether the customer is active, the client not disabled, the contact active.
    Enabled(bool),
    /// The client's tags (names, exactly).
    Tags(Members),
    /// The client's group memberships (group ids).
    Groups(Members),
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
            Some(f) => {
                let mut count = 0;
                to_expr(f, "filter", 1, &mut count, &mut v)
            }
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

fn text_value(field: TextField, value: &str, at: &str, v: &mut Validator) -> Value {
    let n = value.chars().count();
    if n == 0 || n > MAX_TEXT {
        v.add(at, format!("must be 1 to {MAX_TEXT} characters long"));
        return Value::Text(String::new());
    }
    match field {
        TextField::CustomerId | TextField::ClientId => match uuid::Uuid::parse_str(value) {
            Ok(u) => Value::Uuid(u),
            Err(_) => {
                v.add(at, "must be a UUID");
                Value::Uuid(uuid::Uuid::nil())
            }
        },
        TextField::Kind if !["customer", "client", "contact"].contains(&value) => {
            v.add(at, "must be customer, client or contact");
            Value::Text(String::new())
        }
        _ => Value::Text(value.to_string()),
    }
}

fn list_size(len: usize, at: &str, v: &mut Validator) {
    if len == 0 || len > MAX_VALUES {
        v.add(at, format!("must hold 1 to {MAX_VALUES} values"));
    }
}

fn range_value(field: RangeField, value: &RangeValue, at: &str, v: &mut Validator) -> Value {
    match (field, value) {
        (RangeField::Version, RangeValue::Number(n)) => Value::Int(*n),
        (RangeField::Version, RangeValue::Time(_)) => {
            v.add(at, "must be an integer for version");
            Value::Int(0)
        }
        (_, RangeValue::Time(t)) => match OffsetDateTime::parse(t, &Rfc3339) {
            Ok(t) => Value::Time(t),
            Err(_) => {
                v.add(at, "must be an RFC 3339 time");
                Value::Int(0)
            }
        },
        (_, RangeValue::Number(_)) => {
            v.add(at, "must be an RFC 3339 time for createdAt and updatedAt");
            Value::Int(0)
        }
    }
}

/// The filter as an expression; its rule breaks go to `v` under `at`.
fn to_expr(f: &Filter, at: &str, depth: usize, count: &mut usize, v: &mut Validator) -> Expr {
    *count += 1;
    if *count == MAX_CONDITIONS + 1 {
        v.add(
            at,
            format!("must hold at most {MAX_CONDITIONS} conditions in all"),
        );
    }
    if depth > MAX_DEPTH {
        v.add(at, format!("must nest at most {MAX_DEPTH} conditions deep"));
        return Expr::False;
    }
    match f {
        Filter::And(list) | Filter::Or(list) => {
            let key = if matches!(f, Filter::And(_)) {
                "and"
            } else {
                "or"
            };
            if list.is_empty() || list.len() > 20 {
                v.add(format!("{at}.{key}"), "must hold 1 to 20 conditions");
            }
            let parts = list
                .iter()
                .enumerate()
                .map(|(i, g)| to_expr(g, &format!("{at}.{key}[{i}]"), depth + 1, count, v))
                .collect();
            if key == "and" {
                Expr::And(parts)
            } else {
                Expr::Or(parts)
            }
        }
        Filter::Not(g) => Expr::Not(Box::new(to_expr(
            g,
            &format!("{at}.not"),
            depth + 1,
            count,
            v,
        ))),
        Filter::Eq(e) => Expr::Eq(
            e.field.column(),
            text_value(e.field, &e.value, &format!("{at}.eq.value"), v),
        ),
        Filter::In(o) => {
            list_size(o.values.0.len(), &format!("{at}.in.values"), v);
            Expr::In(
                o.field.column(),
                o.values
                    .0
                    .iter()
                    .enumerate()
                    .map(|(i, x)| text_value(o.field, x, &format!("{at}.in.values[{i}]"), v))
                    .collect(),
            )
        }
        Filter::Range(r) => {
            let column = match r.field {
                RangeField::CreatedAt => Column::CreatedAt,
                RangeField::UpdatedAt => Column::UpdatedAt,
                RangeField::Version => Column::Version,
            };
            let bounds: Vec<Expr> = [
                (Bound::Gt, &r.gt, "gt"),
                (Bound::Gte, &r.gte, "gte"),
                (Bound::Lt, &r.lt, "lt"),
                (Bound::Lte, &r.lte, "lte"),
            ]
            .into_iter()
            .filter_map(|(b, value, name)| {
                let value = value.as_ref()?;
                Some(Expr::Range(
                    column,
                    b,
                    range_value(r.field, value, &format!("{at}.range.{name}"), v),
                ))
            })
            .collect();
            if bounds.is_empty() {
                v.add(
                    format!("{at}.range"),
                    "must have a bound: gt, gte, lt or lte",
                );
            }
            Expr::And(bounds)
        }
        Filter::Enabled(b) => Expr::Eq(Column::Enabled, Value::Bool(*b)),
        Filter::Tags(m) | Filter::Groups(m) => {
            let (key, column) = match f {
                Filter::Tags(_) => ("tags", Column::Tags),
                _ => ("groups", Column::Groups),
            };
            let (op, list) = match m {
                Members::Any(list) => ("any", &list.0),
                Members::All(list) => ("all", &list.0),
            };
            let path = format!("{at}.{key}.{op}");
            list_size(list.len(), &path, v);
            let values = list
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    let here = format!("{path}[{i}]");
                    if column == Column::Groups {
                        match uuid::Uuid::parse_str(x) {
                            Ok(u) => Value::Uuid(u),
                            Err(_) => {
                                v.add(here, "must be a group id (a UUID)");
                                Value::Uuid(uuid::Uuid::nil())
                            }
                        }
                    } else {
                        if x.is_empty() || x.chars().count() > 50 {
                            v.add(here, "must be 1 to 50 characters long");
                        }
                        Value::Text(x.clone())
                    }
                })
                .collect();
            match m {
                Members::Any(_) => Expr::HasAny(column, values),
                Members::All(_) => Expr::HasAll(column, values),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
