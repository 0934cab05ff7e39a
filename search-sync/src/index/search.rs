//! The PostgreSQL backend's search (the rules: [`super::query`]). In one transaction: the
//! query's words expanded over the vocabulary (exact, prefix and trigram candidates, which Rust
//! keeps or drops by the typo rules), then the documents holding a kept term for every word
//! and passing the filter, ranked and counted, then (when asked) the facets over them.

use std::collections::HashSet;

use shared_model::db;
use shared_model::error::ApiError;
use sqlx::{PgConnection, Row};

use super::highlight::Terms;
use super::hits::hit;
use super::postgres;
use super::query::{
    After, FACET_VALUES, Facet, Query, Results, Sort, SortKey, identifier_tier, word_tier,
};
use super::sql::{Literal, Sql, inline};

/// The settings a search's transaction begins with ([`db::begin_with`]); the statements below
/// assume them.
/// - The trigram candidates of a one-typo word of four letters ("jahn" for "john") share a
///   quarter of their trigrams.
/// - Generic plans: the statements are shaped so that one plan serves every value (keys and
///   documents are looked up by primary key in nested loops the planner cannot turn into a
///   scan of the customer's documents), and planning them anew took longer than running them.
/// - No JIT: a generic plan's estimates for the query's words (unnest and split of a
///   parameter) pass `jit_above_cost`, and compiling took 20 ms of a 0.3 ms statement.
pub const SEARCH_SETTINGS: &[db::Setting] = &[
    ("pg_trgm.similarity_threshold", "0.2"),
    ("plan_cache_mode", "force_generic_plan"),
    ("jit", "off"),
];

/// Candidates the vocabulary offers a word, per way of matching.
const CANDIDATES: i64 = 64;

/// The words of the query's tokens, in order, each with its token (folded), whether it may
/// match as a prefix, and the vocabulary's candidate terms for it (a row with none if it has
/// none). Words split as `search_words` splits a document's (on what is not a letter or a
/// digit: `(\W|_)+` is `[^[:alnum:]]+`, spelt without a colon so that pgbench can replay the
/// statement).
const EXPAND_SQL: &str = "WITH tokens AS (
        SELECT t.i, search_fold(t.token) AS token, t.i = cardinality($1::text[]) AS last_token
          FROM unnest($1::text[]) WITH ORDINALITY AS t(token, i)),
    words AS (
        SELECT row_number() OVER (ORDER BY t.i, w.j) AS n, t.token, t.last_token, w.word
          FROM tokens t,
               regexp_split_to_table(t.token, '(\\W|_)+') WITH ORDINALITY AS w(word, j)
         WHERE w.word <> ''),
    numbered AS (
        SELECT *, n = max(n) OVER () AS last_word FROM words)
    SELECT w.n, w.word, w.token, w.last_word, w.last_token, c.term, c.exact
      FROM numbered w
      LEFT JOIN LATERAL (
            (SELECT v.term, false AS exact FROM vocabulary v
              WHERE NOT v.exact AND v.term = w.word)
        UNION
            (SELECT v.term, false FROM vocabulary v
              WHERE w.last_word AND NOT v.exact
                AND v.term ~>=~ w.word AND v.term ~<~ (w.word || chr(1114111))
              ORDER BY v.term LIMIT $2)
        UNION
            (SELECT v.term, false FROM vocabulary v
              WHERE char_length(w.word) >= 4 AND NOT v.exact AND v.term % w.word
              ORDER BY similarity(v.term, w.word) DESC LIMIT $2)
        UNION
            (SELECT v.term, true FROM vocabulary v
              WHERE v.exact AND v.term = w.token)
        UNION
            (SELECT v.term, true FROM vocabulary v
              WHERE w.last_token AND v.exact
                AND v.term ~>=~ w.token AND v.term ~<~ (w.token || chr(1114111))
              ORDER BY v.term LIMIT $2)
      ) c ON true";

/// The query's words with the terms kept for them: `(word number, term, tier, identifier)`.
#[derive(Debug, Default)]
struct Expansion {
    n: Vec<i32>,
    term: Vec<String>,
    tier: Vec<i32>,
    exact: Vec<bool>,
    words: i64,
    kept: Terms,
}

/// The update time, in microseconds and negated: the relevance order's third key.
const RECENCY: &str =
    "(-(extract(epoch FROM coalesce(d.updated_at, 'epoch'::timestamptz)) * 1000000))::bigint";

fn micros(column: &str) -> String {
    format!("(extract(epoch FROM coalesce({column}, 'epoch'::timestamptz)) * 1000000)::bigint")
}

/// The values a facet counts, per document.
fn facet_sql(f: Facet) -> &'static str {
    match f {
        Facet::Kind => "d.kind",
        Facet::Type => "d.type",
        Facet::Status => "d.status",
        Facet::Enabled => "d.enabled::text",
        Facet::Country => "d.country",
        Facet::City => "d.city",
        Facet::IndustrySector => "d.industry_sector",
        Facet::IndustryGroup => "d.industry_group",
        Facet::SizeRange => "d.size_range",
        Facet::Assignee => "d.assignee",
        Facet::Tags => "unnest(d.tags)",
    }
}

/// `WITH ... matched AS (kind, id, tiers, outside_name)`: the documents of the query's kinds
/// that pass its filter and (with words) hold a kept term for every word.
fn push_matched(qb: &mut Sql, query: &Query, e: Option<&Expansion>) {
    let kinds: Vec<&'static str> = query.kinds.iter().map(|k| k.as_str()).collect();
    let Some(e) = e else {
        qb.push(
            "WITH matched AS (
            SELECT d.kind, d.id, 0::bigint AS tiers, 0::bigint AS outside_name
              FROM documents d WHERE NOT d.deleted AND d.kind = ANY (",
        );
        qb.bind(kinds).push(") AND ");
        query.filter.push(qb);
        qb.push(")");
        return;
    };
    qb.push("WITH e AS MATERIALIZED (SELECT e.*");
    let customer = query.filter.customer();
    if let Some(customer) = customer {
        qb.push(", search_scoped_key(")
            .bind(customer)
            .push("::uuid, e.term) AS key");
    }
    qb.push(" FROM unnest(");
    qb.bind(e.n.clone()).push("::int[], ");
    qb.bind(e.term.clone()).push("::text[], ");
    qb.bind(e.tier.clone()).push("::int[], ");
    qb.bind(e.exact.clone())
        .push("::boolean[]) AS e(n, term, tier, exact)),");
    match customer {
        Some(_) => push_keyed(qb, query, kinds, e.words),
        None => push_tested(qb, query, kinds, e),
    }
}

/// Within one customer: each term's documents by its key (the index lookup row-level
/// security allows, migrations 1006 and 1007), ranked from where the key says the term is;
/// only the documents holding a term for every word are read, for the filter.
fn push_keyed(qb: &mut Sql, query: &Query, kinds: Vec<&'static str>, words: i64) {
    // OFFSET 0 keeps each lookup a nested loop by key: flattened, the generic plan could join
    // by hash over a scan.
    qb.push(
        "
    per_word AS (
        SELECT k.kind, k.id, e.n,
               min(e.tier * 10 + CASE WHEN NOT e.exact AND k.places & 1 <> 0
                                      THEN 0 ELSE 1 END) AS cost
          FROM e, LATERAL (
                SELECT k.kind, k.id, k.places FROM document_keys k
                 WHERE k.key = e.key
                   AND k.places & CASE WHEN e.exact THEN 4 ELSE 3 END <> 0 OFFSET 0) k
         GROUP BY k.kind, k.id, e.n),
    worded AS (
        SELECT kind, id, sum(cost / 10)::bigint AS tiers, sum(cost % 10)::bigint AS outside_name
          FROM per_word GROUP BY kind, id HAVING count(*) = ",
    );
    qb.bind(words).push(
        "),
    matched AS MATERIALIZED (
        SELECT w.* FROM worded w, LATERAL (
               SELECT 1 FROM documents d
                WHERE d.kind = w.kind AND d.id = w.id AND NOT d.deleted AND d.kind = ANY (",
    );
    qb.bind(kinds).push(") AND ");
    query.filter.push(qb);
    qb.push(" OFFSET 0) d)");
}

/// Any other scope: the documents its filter selects holding one of the terms at all, then
/// their word arrays tested per term.
fn push_tested(qb: &mut Sql, query: &Query, kinds: Vec<&'static str>, e: &Expansion) {
    qb.push(
        "
    candidates AS MATERIALIZED (
        SELECT d.kind, d.id, d.name_words, d.other_words, d.exact_terms
          FROM documents d WHERE NOT d.deleted AND d.kind = ANY (",
    );
    qb.bind(kinds).push(") AND ");
    query.filter.push(qb);
    let pick = |exact: bool| -> Vec<String> {
        e.term
            .iter()
            .zip(&e.exact)
            .filter(|(_, x)| **x == exact)
            .map(|(t, _)| t.clone())
            .collect()
    };
    let (words, identifiers) = (pick(false), pick(true));
    qb.push(" AND (d.name_words && ");
    qb.bind(words.clone()).push("::text[] OR d.other_words && ");
    qb.bind(words).push("::text[] OR d.exact_terms && ");
    qb.bind(identifiers).push("::text[])");
    qb.push(
        "),
    hits AS (
        SELECT d.kind, d.id, e.n,
               e.tier * 10 + CASE WHEN NOT e.exact AND d.name_words @> ARRAY[e.term]
                                  THEN 0 ELSE 1 END AS cost
          FROM e JOIN candidates d
            ON (NOT e.exact AND (d.name_words @> ARRAY[e.term] OR d.other_words @> ARRAY[e.term]))
            OR (e.exact AND d.exact_terms @> ARRAY[e.term])),
    per_word AS (
        SELECT kind, id, n, min(cost) AS cost FROM hits GROUP BY kind, id, n),
    matched AS (
        SELECT kind, id, sum(cost / 10)::bigint AS tiers, sum(cost % 10)::bigint AS outside_name
          FROM per_word GROUP BY kind, id HAVING count(*) = ",
    );
    qb.bind(e.words).push(")");
}

/// The page's order, its sort-key columns, and the comparison a position continues with.
fn order(sort: Sort) -> (String, String, &'static str) {
    let dir = |descending: bool| if descending { "DESC" } else { "ASC" };
    let by = |key: &str, descending: bool| {
        let d = dir(descending);
        (
            format!("{key} {d}, d.kind {d}, d.id {d}"),
            if descending { "<" } else { ">" },
        )
    };
    match sort {
        Sort::Relevance => (
            format!("m.tiers, m.outside_name, {RECENCY}, d.kind, d.id"),
            format!("m.tiers AS k1, m.outside_name AS k2, {RECENCY} AS k3"),
            ">",
        ),
        Sort::Name { descending } => {
            let (o, cmp) = by("d.folded_name", descending);
            (o, "d.folded_name AS kname".into(), cmp)
        }
        Sort::CreatedAt { descending } | Sort::UpdatedAt { descending } => {
            let column = if matches!(sort, Sort::CreatedAt { .. }) {
                "d.created_at"
            } else {
                "d.updated_at"
            };
            let m = micros(column);
            let (o, cmp) = by(&m, descending);
            (o, format!("{m} AS ktime"), cmp)
        }
    }
}

/// `WHERE (sort key, kind, id) > position` (`<` for a descending order); nothing for a
/// position of another order (the API refuses such a cursor).
fn push_after(qb: &mut Sql, sort: Sort, cmp: &str, after: &After) {
    let key = match (&after.key, sort) {
        (SortKey::Relevance(..), Sort::Relevance) => {
            format!("m.tiers, m.outside_name, {RECENCY}")
        }
        (SortKey::Name(_), Sort::Name { .. }) => "d.folded_name".to_string(),
        (SortKey::Time(_), Sort::CreatedAt { .. }) => micros("d.created_at"),
        (SortKey::Time(_), Sort::UpdatedAt { .. }) => micros("d.updated_at"),
        _ => return,
    };
    qb.push(format!(" WHERE ({key}, d.kind, d.id) {cmp} ("));
    match &after.key {
        SortKey::Relevance(t, o, r) => {
            qb.bind(*t).push(", ").bind(*o).push(", ").bind(*r);
        }
        SortKey::Name(n) => {
            qb.bind(n.clone());
        }
        SortKey::Time(t) => {
            qb.bind(*t);
        }
    }
    qb.push(", ")
        .bind(after.kind.as_str())
        .push(", ")
        .bind(after.id)
        .push(")");
}

impl postgres::Postgres {
    /// Runs `query` in the caller's transaction, begun with [`SEARCH_SETTINGS`] (its row-level
    /// security applies).
    pub async fn run_search(conn: &mut PgConnection, query: &Query) -> Result<Results, ApiError> {
        search(conn, query, None).await
    }

    /// As [`Postgres::run_search`], also returning the statements it ran with their values
    /// inlined, in order (the search-query benchmark replays them under pgbench).
    pub async fn search_statements(
        conn: &mut PgConnection,
        query: &Query,
    ) -> Result<(Results, Vec<String>), ApiError> {
        let mut statements = Vec::new();
        let results = search(conn, query, Some(&mut statements)).await?;
        Ok((results, statements))
    }
}

/// The search; with `record`, each statement run is appended to it as replayable SQL.
async fn search(
    conn: &mut PgConnection,
    query: &Query,
    mut record: Option<&mut Vec<String>>,
) -> Result<Results, ApiError> {
    let recording = record.is_some();
    if query.kinds.is_empty() || query.limit <= 0 {
        return Ok(Results::default());
    }
    let tokens = query.tokens();
    let expansion = if tokens.is_empty() {
        None
    } else {
        match expand(conn, &tokens, record.as_deref_mut()).await? {
            Some(e) => Some(e),
            // A word without a term matches nothing.
            None => return Ok(Results::default()),
        }
    };
    let (order_by, keys, cmp) = order(query.sort);
    let mut qb = if recording {
        Sql::recording()
    } else {
        Sql::new()
    };
    push_matched(&mut qb, query, expansion.as_ref());
    qb.push(format!(
        "
SELECT d.kind, d.id, d.customer_id, d.client_id, d.parent_id, d.version, d.name, d.email, d.phone,
       d.domain, d.external_id, d.codes, d.type, d.status, d.enabled, d.tags, d.assignee,
       d.country, d.city, d.industry_sector, d.industry_group, d.size_range, d.groups,
       d.created_at, d.updated_at, m.tiers, m.outside_name, m.total, {keys}
  FROM (SELECT *, count(*) OVER () AS total FROM matched) m
  JOIN documents d USING (kind, id)"
    ));
    if let Some(after) = &query.after {
        push_after(&mut qb, query.sort, cmp, after);
    }
    qb.push(format!(" ORDER BY {order_by} LIMIT "));
    qb.bind(query.limit + 1);
    if let (Some(r), Some(sql)) = (record.as_deref_mut(), qb.replayable()) {
        r.push(sql);
    }
    let rows = qb.build().fetch_all(&mut *conn).await?;
    let kept = expansion.as_ref().map(|e| &e.kept);
    let mut results = Results {
        total: rows.first().map_or(0, |r| r.get("total")),
        ..Results::default()
    };
    for row in &rows {
        results.hits.push(hit(row, query.sort, kept)?);
    }
    if !query.facets.is_empty() && results.total > 0 {
        results.facets = facets(conn, query, expansion.as_ref(), record).await?;
    }
    Ok(results)
}

/// The query's words expanded over the vocabulary, `None` if a word has no term.
async fn expand(
    conn: &mut PgConnection,
    tokens: &[String],
    record: Option<&mut Vec<String>>,
) -> Result<Option<Expansion>, ApiError> {
    if let Some(r) = record {
        r.push(inline(
            EXPAND_SQL,
            &[tokens.to_vec().literal(), CANDIDATES.literal()],
        ));
    }
    let rows = sqlx::query(EXPAND_SQL)
        .bind(tokens)
        .bind(CANDIDATES)
        .fetch_all(&mut *conn)
        .await?;
    let mut words = HashSet::new();
    let mut e = Expansion::default();
    for row in &rows {
        let n: i64 = row.get("n");
        words.insert(n);
        let Some(term) = row.get::<Option<String>, _>("term") else {
            continue;
        };
        let is_exact: bool = row.get("exact");
        let token: String = row.get("token");
        let tier = if is_exact {
            identifier_tier(&token, &term, row.get("last_token"))
        } else {
            word_tier(row.get("word"), &term, row.get("last_word"))
        };
        if let Some(tier) = tier {
            if is_exact {
                e.kept.identifiers.push((term.clone(), token));
            } else {
                e.kept.words.insert(term.clone());
            }
            e.n.push(n as i32);
            e.term.push(term);
            e.tier.push(tier);
            e.exact.push(is_exact);
        }
    }
    let matched: HashSet<i64> = e.n.iter().map(|n| i64::from(*n)).collect();
    if words.is_empty() || matched.len() < words.len() {
        return Ok(None);
    }
    e.words = words.len() as i64;
    Ok(Some(e))
}

/// The asked facets' most frequent values over every matched document.
async fn facets(
    conn: &mut PgConnection,
    query: &Query,
    e: Option<&Expansion>,
    record: Option<&mut Vec<String>>,
) -> Result<Vec<(Facet, Vec<(String, i64)>)>, ApiError> {
    let mut qb = if record.is_some() {
        Sql::recording()
    } else {
        Sql::new()
    };
    push_matched(&mut qb, query, e);
    qb.push(
        "
    SELECT facet, value, n FROM (
        SELECT facet, value, n, row_number() OVER (PARTITION BY facet ORDER BY n DESC, value) AS r
          FROM (",
    );
    for (i, f) in query.facets.iter().enumerate() {
        let (name, expr) = (f.as_str(), facet_sql(*f));
        if i > 0 {
            qb.push(" UNION ALL ");
        }
        qb.push(format!(
            "SELECT '{name}'::text AS facet, v AS value, count(*) AS n
               FROM matched m JOIN documents d USING (kind, id), LATERAL (SELECT {expr} AS v) x
              WHERE v IS NOT NULL GROUP BY v"
        ));
    }
    qb.push(") c) ranked WHERE r <= ");
    qb.bind(FACET_VALUES as i64);
    if let (Some(r), Some(sql)) = (record, qb.replayable()) {
        r.push(sql);
    }
    let rows = qb.build().fetch_all(&mut *conn).await?;
    let mut out: Vec<(Facet, Vec<(String, i64)>)> =
        query.facets.iter().map(|f| (*f, Vec::new())).collect();
    for row in rows {
        let facet: String = row.get("facet");
        if let Some((_, values)) = out.iter_mut().find(|(f, _)| f.as_str() == facet) {
            values.push((row.get("value"), row.get("n")));
        }
    }
    for (_, values) in &mut out {
        values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    }
    Ok(out)
}
