//! The typed filter tree a search runs with: a caller's scope, a search key's narrowing filter
//! and the request's own filters, combined by [`Expr::and`]. Its columns are an enum and its
//! values are bound parameters, so no filter is ever assembled from a caller's text; a backend
//! compiles it to its own query language (PostgreSQL: [`Expr::push`]).

use shared_model::ids::{ClientId, CustomerId};
use time::OffsetDateTime;

use super::Kind;
use super::sql::Sql;

/// A column of a document a filter may test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Column {
    Kind,
    Id,
    CustomerId,
    ClientId,
    ParentId,
    Type,
    Status,
    Enabled,
    Country,
    City,
    IndustrySector,
    IndustryGroup,
    SizeRange,
    Assignee,
    Email,
    Domain,
    ExternalId,
    Tags,
    Groups,
    CreatedAt,
    UpdatedAt,
    Version,
}

impl Column {
    /// The column of `documents` (aliased `d`) it is.
    pub fn sql(self) -> &'static str {
        match self {
            Column::Kind => "d.kind",
            Column::Id => "d.id",
            Column::CustomerId => "d.customer_id",
            Column::ClientId => "d.client_id",
            Column::ParentId => "d.parent_id",
            Column::Type => "d.type",
            Column::Status => "d.status",
            Column::Enabled => "d.enabled",
            Column::Country => "d.country",
            Column::City => "d.city",
            Column::IndustrySector => "d.industry_sector",
            Column::IndustryGroup => "d.industry_group",
            Column::SizeRange => "d.size_range",
            Column::Assignee => "d.assignee",
            Column::Email => "d.email",
            Column::Domain => "d.domain",
            Column::ExternalId => "d.external_id",
            Column::Tags => "d.tags",
            Column::Groups => "d.groups",
            Column::CreatedAt => "d.created_at",
            Column::UpdatedAt => "d.updated_at",
            Column::Version => "d.version",
        }
    }
}

/// A value a filter compares a column with.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Text(String),
    Uuid(uuid::Uuid),
    Bool(bool),
    Time(OffsetDateTime),
    Int(i64),
}

impl From<Kind> for Value {
    fn from(k: Kind) -> Value {
        Value::Text(k.as_str().to_string())
    }
}

impl From<CustomerId> for Value {
    fn from(c: CustomerId) -> Value {
        Value::Uuid(c.as_uuid())
    }
}

impl From<ClientId> for Value {
    fn from(c: ClientId) -> Value {
        Value::Uuid(c.as_uuid())
    }
}

/// One side of a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Bound {
    fn sql(self) -> &'static str {
        match self {
            Bound::Gt => " > ",
            Bound::Gte => " >= ",
            Bound::Lt => " < ",
            Bound::Lte => " <= ",
        }
    }
}

/// A condition on documents.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    True,
    False,
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// The column equals the value (never true for a NULL column).
    Eq(Column, Value),
    /// The column equals one of the values.
    In(Column, Vec<Value>),
    IsNull(Column),
    Range(Column, Bound, Value),
    /// The array column holds at least one of the values.
    HasAny(Column, Vec<Value>),
    /// The array column holds every value.
    HasAll(Column, Vec<Value>),
}

impl Expr {
    /// Both: the way scopes, key filters and request filters combine (a request can only
    /// narrow what it is combined with).
    pub fn and(self, other: Expr) -> Expr {
        match (self, other) {
            (Expr::True, e) | (e, Expr::True) => e,
            (Expr::And(mut a), Expr::And(b)) => {
                a.extend(b);
                Expr::And(a)
            }
            (Expr::And(mut a), e) => {
                a.push(e);
                Expr::And(a)
            }
            (a, b) => Expr::And(vec![a, b]),
        }
    }

    /// The one customer every document satisfying the condition belongs to, when the
    /// condition pins one (a tenant's or a client's scope does): the search then finds its
    /// candidates through the customer's own term keys.
    pub fn customer(&self) -> Option<uuid::Uuid> {
        match self {
            Expr::Eq(Column::CustomerId, Value::Uuid(u)) => Some(*u),
            Expr::In(Column::CustomerId, vs) => match vs.as_slice() {
                [Value::Uuid(u)] => Some(*u),
                _ => None,
            },
            // Two different pins leave nothing to find, which either customer's keys find.
            Expr::And(list) => list.iter().find_map(Expr::customer),
            Expr::Or(list) => {
                let first = list.first()?.customer()?;
                list.iter()
                    .all(|e| e.customer() == Some(first))
                    .then_some(first)
            }
            _ => None,
        }
    }

    /// Whether the document (as the index row `row` describes it) satisfies the condition:
    /// the same rule as the SQL, for tests that check hits against scopes.
    pub fn holds(&self, row: &dyn Fn(Column) -> Vec<Value>) -> bool {
        match self {
            Expr::True => true,
            Expr::False => false,
            Expr::And(list) => list.iter().all(|e| e.holds(row)),
            Expr::Or(list) => list.iter().any(|e| e.holds(row)),
            // SQL's three-valued NOT: a comparison with NULL is neither true nor false.
            Expr::Not(e) => !e.holds(row) && !e.is_unknown(row),
            Expr::Eq(c, v) => row(*c).first() == Some(v),
            Expr::In(c, vs) => row(*c).first().is_some_and(|x| vs.contains(x)),
            Expr::IsNull(c) => row(*c).is_empty(),
            Expr::Range(c, b, v) => row(*c).first().is_some_and(|x| match (x, v) {
                (Value::Time(x), Value::Time(v)) => compare(*b, x, v),
                (Value::Int(x), Value::Int(v)) => compare(*b, x, v),
                _ => false,
            }),
            Expr::HasAny(c, vs) => row(*c).iter().any(|x| vs.contains(x)),
            Expr::HasAll(c, vs) => {
                let have = row(*c);
                vs.iter().all(|v| have.contains(v))
            }
        }
    }

    /// Whether SQL would evaluate the condition to NULL for the row (a scalar comparison with
    /// a NULL column, not under OR/AND short-circuits that settle it).
    fn is_unknown(&self, row: &dyn Fn(Column) -> Vec<Value>) -> bool {
        match self {
            Expr::Eq(c, _) | Expr::In(c, _) | Expr::Range(c, _, _) => row(*c).is_empty(),
            Expr::Not(e) => e.is_unknown(row),
            Expr::And(list) => {
                !list.iter().any(|e| !e.holds(row) && !e.is_unknown(row))
                    && list.iter().any(|e| e.is_unknown(row))
            }
            Expr::Or(list) => {
                !list.iter().any(|e| e.holds(row)) && list.iter().any(|e| e.is_unknown(row))
            }
            _ => false,
        }
    }

    /// Appends the condition as SQL over `documents d`, every value a bound parameter.
    pub fn push(&self, qb: &mut Sql) {
        match self {
            Expr::True => {
                qb.push("true");
            }
            Expr::False => {
                qb.push("false");
            }
            Expr::And(list) | Expr::Or(list) if list.is_empty() => {
                qb.push(if matches!(self, Expr::And(_)) {
                    "true"
                } else {
                    "false"
                });
            }
            Expr::And(list) | Expr::Or(list) => {
                let op = if matches!(self, Expr::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                qb.push("(");
                for (i, e) in list.iter().enumerate() {
                    if i > 0 {
                        qb.push(op);
                    }
                    e.push(qb);
                }
                qb.push(")");
            }
            Expr::Not(e) => {
                qb.push("NOT (");
                e.push(qb);
                qb.push(")");
            }
            Expr::Eq(c, v) => {
                qb.push(c.sql()).push(" = ");
                push_value(qb, v);
            }
            Expr::In(c, vs) => {
                qb.push(c.sql()).push(" = ANY (");
                push_values(qb, vs);
                qb.push(")");
            }
            Expr::IsNull(c) => {
                qb.push(c.sql()).push(" IS NULL");
            }
            Expr::Range(c, b, v) => {
                qb.push(c.sql()).push(b.sql());
                push_value(qb, v);
            }
            Expr::HasAny(c, vs) => {
                qb.push(c.sql()).push(" && ");
                push_values(qb, vs);
            }
            Expr::HasAll(c, vs) => {
                qb.push(c.sql()).push(" @> ");
                push_values(qb, vs);
            }
        }
    }
}

fn compare<T: PartialOrd>(b: Bound, x: &T, v: &T) -> bool {
    match b {
        Bound::Gt => x > v,
        Bound::Gte => x >= v,
        Bound::Lt => x < v,
        Bound::Lte => x <= v,
    }
}

fn push_value(qb: &mut Sql, v: &Value) {
    match v {
        Value::Text(s) => qb.bind(s.clone()),
        Value::Uuid(u) => qb.bind(*u),
        Value::Bool(b) => qb.bind(*b),
        Value::Time(t) => qb.bind(*t),
        Value::Int(i) => qb.bind(*i),
    };
}

/// A list of values as one array parameter, typed by its first value (a list is never mixed:
/// the API builds each from one field's type).
fn push_values(qb: &mut Sql, vs: &[Value]) {
    match vs.first() {
        Some(Value::Uuid(_)) => qb.bind(
            vs.iter()
                .filter_map(|v| match v {
                    Value::Uuid(u) => Some(*u),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        Some(Value::Int(_)) => qb.bind(
            vs.iter()
                .filter_map(|v| match v {
                    Value::Int(i) => Some(*i),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        _ => qb.bind(
            vs.iter()
                .filter_map(|v| match v {
                    Value::Text(s) => Some(s.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(e: &Expr) -> String {
        let mut qb = Sql::new();
        e.push(&mut qb);
        qb.into_string()
    }

    #[test]
    fn values_are_parameters_and_columns_come_from_the_enum() {
        let e =
            Expr::Eq(Column::Country, Value::Text("DE' OR true --".into())).and(Expr::Or(vec![
                Expr::HasAll(Column::Tags, vec![Value::Text("vip".into())]),
                Expr::Not(Box::new(Expr::IsNull(Column::City))),
            ]));
        assert_eq!(
            sql(&e),
            "(d.country = $1 AND (d.tags @> $2 OR NOT (d.city IS NULL)))"
        );
        assert_eq!(sql(&Expr::And(vec![])), "true");
        assert_eq!(sql(&Expr::Or(vec![])), "false");
    }

    #[test]
    fn a_customer_is_pinned_only_when_every_match_has_it() {
        let (a, b) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        let pin = |u| Expr::Eq(Column::CustomerId, Value::Uuid(u));
        let client = Expr::Eq(Column::ClientId, Value::Uuid(b));
        assert_eq!(pin(a).customer(), Some(a));
        assert_eq!(
            Expr::In(Column::CustomerId, vec![Value::Uuid(a)]).customer(),
            Some(a)
        );
        assert_eq!(client.clone().and(pin(a)).customer(), Some(a));
        assert_eq!(
            Expr::Or(vec![pin(a), pin(a).and(client.clone())]).customer(),
            Some(a)
        );
        assert_eq!(Expr::Or(vec![pin(a), client.clone()]).customer(), None);
        assert_eq!(Expr::Or(vec![pin(a), pin(b)]).customer(), None);
        assert_eq!(
            Expr::In(Column::CustomerId, vec![Value::Uuid(a), Value::Uuid(b)]).customer(),
            None
        );
        assert_eq!(Expr::Not(Box::new(pin(a))).customer(), None);
        assert_eq!(Expr::Or(vec![]).customer(), None);
        assert_eq!(Expr::True.customer(), None);
    }

    #[test]
    fn and_flattens_and_true_is_its_identity() {
        let a = Expr::Eq(Column::Kind, Kind::Client.into());
        let b = Expr::IsNull(Column::ClientId);
        assert_eq!(Expr::True.and(a.clone()), a);
        assert_eq!(
            a.clone().and(b.clone()).and(Expr::True).and(a.clone()),
            Expr::And(vec![
                a,
                b.clone(),
                Expr::Eq(Column::Kind, Kind::Client.into())
            ])
        );
    }

    #[test]
    fn holds_follows_sql_null_logic() {
        let row = |c: Column| match c {
            Column::Country => vec![Value::Text("DE".into())],
            Column::Tags => vec![Value::Text("a".into()), Value::Text("b".into())],
            _ => vec![],
        };
        let de = Expr::Eq(Column::Country, Value::Text("DE".into()));
        let city = Expr::Eq(Column::City, Value::Text("Berlin".into()));
        assert!(de.holds(&row));
        assert!(!city.holds(&row));
        // NOT (city = 'Berlin') is NULL for a document without a city: not a hit.
        assert!(!Expr::Not(Box::new(city.clone())).holds(&row));
        assert!(Expr::Not(Box::new(Expr::IsNull(Column::Country))).holds(&row));
        assert!(Expr::Not(Box::new(Expr::And(vec![city.clone(), Expr::False]))).holds(&row));
        assert!(!Expr::Not(Box::new(Expr::Or(vec![city, Expr::False]))).holds(&row));
        let tags = |v: &[&str]| v.iter().map(|s| Value::Text(s.to_string())).collect();
        assert!(Expr::HasAll(Column::Tags, tags(&["a", "b"])).holds(&row));
        assert!(!Expr::HasAll(Column::Tags, tags(&["a", "c"])).holds(&row));
        assert!(Expr::HasAny(Column::Tags, tags(&["c", "b"])).holds(&row));
    }
}
