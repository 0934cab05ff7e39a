//! A statement being built: sqlx's `QueryBuilder` with every value bound as a parameter, and,
//! when asked for, each value also as an SQL literal, so that the very statement a search ran
//! can be replayed elsewhere (the search-query benchmark runs it under pgbench).

use sqlx::postgres::PgArguments;
use sqlx::{Encode, Postgres, QueryBuilder, Type};

/// A value's SQL literal, typed.
pub trait Literal {
    /// The type it is cast to (its element type, for an array).
    const TYPE: &'static str;
    fn literal(&self) -> String;
}

fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Literal for String {
    const TYPE: &'static str = "text";
    fn literal(&self) -> String {
        format!("{}::text", quoted(self))
    }
}

impl Literal for &str {
    const TYPE: &'static str = "text";
    fn literal(&self) -> String {
        format!("{}::text", quoted(self))
    }
}

impl Literal for i64 {
    const TYPE: &'static str = "bigint";
    fn literal(&self) -> String {
        format!("{self}::bigint")
    }
}

impl Literal for i32 {
    const TYPE: &'static str = "integer";
    fn literal(&self) -> String {
        format!("{self}::integer")
    }
}

impl Literal for bool {
    const TYPE: &'static str = "boolean";
    fn literal(&self) -> String {
        self.to_string()
    }
}

impl Literal for uuid::Uuid {
    const TYPE: &'static str = "uuid";
    fn literal(&self) -> String {
        format!("'{self}'::uuid")
    }
}

impl Literal for time::OffsetDateTime {
    const TYPE: &'static str = "timestamptz";
    fn literal(&self) -> String {
        let t = self
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        format!("'{t}'::timestamptz")
    }
}

impl<T: Literal> Literal for Vec<T> {
    const TYPE: &'static str = T::TYPE;
    fn literal(&self) -> String {
        let items: Vec<String> = self.iter().map(Literal::literal).collect();
        format!("ARRAY[{}]::{}[]", items.join(", "), T::TYPE)
    }
}

/// The builder.
pub struct Sql {
    qb: QueryBuilder<Postgres>,
    literals: Option<Vec<String>>,
}

impl Sql {
    /// A statement bound as usual.
    pub fn new() -> Sql {
        Sql {
            qb: QueryBuilder::new(""),
            literals: None,
        }
    }

    /// A statement that also records its values as literals ([`Sql::replayable`]).
    pub fn recording() -> Sql {
        Sql {
            qb: QueryBuilder::new(""),
            literals: Some(Vec::new()),
        }
    }

    pub fn push(&mut self, sql: impl std::fmt::Display) -> &mut Sql {
        self.qb.push(sql);
        self
    }

    /// Binds `v` as the next parameter.
    pub fn bind<T>(&mut self, v: T) -> &mut Sql
    where
        T: Literal + for<'q> Encode<'q, Postgres> + Type<Postgres> + Send + 'static,
    {
        if let Some(l) = &mut self.literals {
            l.push(v.literal());
        }
        self.qb.push_bind(v);
        self
    }

    pub fn build(&mut self) -> sqlx::query::Query<'_, Postgres, PgArguments> {
        self.qb.build()
    }

    /// The SQL with each parameter replaced by its literal (a recording statement's; `None`
    /// for one that was not recorded).
    pub fn replayable(&self) -> Option<String> {
        let literals = self.literals.as_ref()?;
        Some(inline(self.qb.sql().as_str(), literals))
    }

    pub fn into_string(self) -> String {
        self.qb.into_string()
    }
}

impl Default for Sql {
    fn default() -> Self {
        Sql::new()
    }
}

/// `sql` with `$1`, `$2`, ... replaced by `literals` (the highest number first, so `$1` does
/// not take the start of `$10`).
pub fn inline(sql: &str, literals: &[String]) -> String {
    let mut out = sql.to_string();
    for (i, l) in literals.iter().enumerate().rev() {
        out = out.replace(&format!("${}", i + 1), l);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_statement_inlines_its_values_as_typed_literals() {
        let mut s = Sql::recording();
        s.push("SELECT ")
            .bind("it's".to_string())
            .push(", ")
            .bind(vec![1i32, 2])
            .push(", ")
            .bind(Vec::<String>::new());
        for i in 0..8 {
            s.push(", ").bind(i64::from(i));
        }
        assert_eq!(
            s.replayable().unwrap(),
            "SELECT 'it''s'::text, ARRAY[1::integer, 2::integer]::integer[], ARRAY[]::text[], \
             0::bigint, 1::bigint, 2::bigint, 3::bigint, 4::bigint, 5::bigint, 6::bigint, 7::bigint"
        );
        assert!(Sql::new().replayable().is_none());
    }
}
