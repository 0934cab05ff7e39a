//! A search's filter as a request writes it (one key per condition), and its validation into
//! the index's typed filter tree ([`Expr`]): every rule it breaks is a 422 naming the field
//! (`filter.and[1].in.values[0]`). Search keys store their narrowing filter in this form.

use serde::{Deserialize, Serialize};
use shared_model::error::Validator;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use crate::index::filter::{Bound, Column, Expr, Value};

/// At most this many characters in a value.
pub const MAX_TEXT: usize = 200;
/// A filter has at most this many conditions in all, nested at most this deep, and a list at
/// most this many values.
pub const MAX_CONDITIONS: usize = 50;
pub const MAX_DEPTH: usize = 6;
pub const MAX_VALUES: usize = 100;

/// A text field compared by `eq` and `in`: exactly, case included, as the document holds it
/// (`country` is an ISO 3166-1 code such as `DE`; `kind` one of the kinds; `customerId` and
/// `clientId` UUIDs).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
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
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Equals {
    pub field: TextField,
    #[schema(min_length = 1, max_length = 200)]
    pub value: String,
}

/// 1 to 100 values, each 1 to 200 characters (tags: 1 to 50; groups: UUIDs).
#[derive(Clone, Debug, Deserialize, Serialize)]
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
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OneOf {
    pub field: TextField,
    pub values: Values,
}

/// A field compared by `range`: a time (RFC 3339) or the version (an integer).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum RangeField {
    CreatedAt,
    UpdatedAt,
    Version,
}

/// A bound of a range: an RFC 3339 time for `createdAt` and `updatedAt`, an integer for
/// `version`.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum RangeValue {
    Number(i64),
    Time(String),
}

/// `{"field": ..., "gte": ..., "lt": ...}`: at least one bound.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Between {
    pub field: RangeField,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gt: Option<RangeValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gte: Option<RangeValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lt: Option<RangeValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lte: Option<RangeValue>,
}

/// `{"any": [...]}` (at least one of the values) or `{"all": [...]}` (every one).
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Members {
    Any(Values),
    All(Values),
}

/// A condition on documents: exactly one of its keys. Conditions nest at most 6 deep, 50 in
/// all; a list holds 1 to 100 values.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
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

/// A filter as an expression, its rule breaks added to `v` under `at` (`filter`).
pub fn filter_expr(f: &Filter, at: &str, v: &mut Validator) -> Expr {
    let mut count = 0;
    to_expr(f, at, 1, &mut count, v)
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
