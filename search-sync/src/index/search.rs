//! The PostgreSQL backend's search (the rules: [`super::query`]). Two statements in one
//! transaction: the query's words expanded over the vocabulary (exact, prefix and trigram
//! candidates, which Rust keeps or drops by the typo rules), then the documents holding a
//! kept term for every word, ranked.

use std::collections::HashSet;

use shared_model::error::ApiError;
use sqlx::{PgConnection, Row};

use super::query::{Hit, Query, Within, identifier_tier, word_tier};
use super::{Kind, postgres};

/// Candidates the vocabulary offers a word, per way of matching.
const CANDIDATES: i64 = 64;

/// The words of the query's tokens, in order, each with its token (folded), whether it may
/// match as a prefix, and the vocabulary's candidate terms for it (a row with none if it has
/// none).
const EXPAND_SQL: &str = "WITH tokens AS (
        SELECT t.i, search_fold(t.token) AS token, t.i = cardinality($1::text[]) AS last_token
          FROM unnest($1::text[]) WITH ORDINALITY AS t(token, i)),
    words AS (
        SELECT row_number() OVER (ORDER BY t.i, w.j) AS n, t.token, t.last_token, w.word
          FROM tokens t,
               regexp_split_to_table(t.token, '[^[:alnum:]]+') WITH ORDINALITY AS w(word, j)
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

/// The documents with a kept term for each of the `$5` words, best first. A word's match costs
/// `tier * 10 + (0 in the name, 1 elsewhere)`; a document's cost is its words' best.
const DOCUMENTS_SQL: &str = "WITH e AS (
        SELECT * FROM unnest($1::int[], $2::text[], $3::int[], $4::boolean[])
            AS e(n, term, tier, exact)),
    hits AS (
        SELECT d.kind, d.id, e.n,
               e.tier * 10 + CASE WHEN NOT e.exact AND d.name_words @> ARRAY[e.term]
                                  THEN 0 ELSE 1 END AS cost
          FROM e JOIN documents d
            ON (NOT e.exact AND (d.name_words @> ARRAY[e.term] OR d.other_words @> ARRAY[e.term]))
            OR (e.exact AND d.exact_terms @> ARRAY[e.term])
         WHERE d.kind = ANY ($6) AND NOT d.deleted
           AND ($7::uuid IS NULL OR d.customer_id = $7)
           AND ($8::uuid IS NULL OR d.client_id = $8)
           AND ($9::uuid IS NULL OR d.parent_id = $9)),
    per_word AS (
        SELECT kind, id, n, min(cost) AS cost FROM hits GROUP BY kind, id, n),
    matched AS (
        SELECT kind, id, sum(cost / 10) AS tiers, sum(cost % 10) AS outside_name
          FROM per_word GROUP BY kind, id HAVING count(*) = $5)
    SELECT d.kind, d.id, d.customer_id, d.client_id, d.name, m.tiers, m.outside_name
      FROM matched m JOIN documents d USING (kind, id)
     ORDER BY m.tiers, m.outside_name, d.updated_at DESC, d.id
     LIMIT $10";

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

impl postgres::Postgres {
    /// Runs `query` (in the caller's transaction: its row-level security applies).
    pub async fn run_search(conn: &mut PgConnection, query: &Query) -> Result<Vec<Hit>, ApiError> {
        let tokens = query.tokens();
        if tokens.is_empty() || query.kinds.is_empty() || query.limit <= 0 {
            return Ok(Vec::new());
        }
        // The trigram candidates of a one-typo word of four letters ("jahn" for "john") share
        // a quarter of their trigrams.
        sqlx::query("SELECT set_config('pg_trgm.similarity_threshold', '0.2', true)")
            .execute(&mut *conn)
            .await?;
        let rows = sqlx::query(EXPAND_SQL)
            .bind(&tokens)
            .bind(CANDIDATES)
            .fetch_all(&mut *conn)
            .await?;
        let mut words = HashSet::new();
        let (mut ns, mut terms, mut tiers, mut exact) = (vec![], vec![], vec![], vec![]);
        for row in &rows {
            let n: i64 = row.get("n");
            words.insert(n);
            let Some(term) = row.get::<Option<String>, _>("term") else {
                continue;
            };
            let is_exact: bool = row.get("exact");
            let tier = if is_exact {
                identifier_tier(row.get("token"), &term, row.get("last_token"))
            } else {
                word_tier(row.get("word"), &term, row.get("last_word"))
            };
            if let Some(tier) = tier {
                ns.push(n as i32);
                terms.push(term);
                tiers.push(tier);
                exact.push(is_exact);
            }
        }
        // Every word needs a term: a word without one matches nothing.
        let matched: HashSet<i64> = ns.iter().map(|n| i64::from(*n)).collect();
        if words.is_empty() || matched.len() < words.len() {
            return Ok(Vec::new());
        }
        let n_words = words.len() as i64;
        let (customer, client, parent) = match query.within {
            Within::All => (None, None, None),
            Within::Customer(c) => (Some(c), None, None),
            Within::Client(c, k) => (Some(c), Some(k), None),
            Within::SubTenants(p) => (None, None, Some(p)),
        };
        let kinds: Vec<&str> = query.kinds.iter().map(|k| k.as_str()).collect();
        let rows = sqlx::query(DOCUMENTS_SQL)
            .bind(&ns)
            .bind(&terms)
            .bind(&tiers)
            .bind(&exact)
            .bind(n_words)
            .bind(&kinds)
            .bind(customer)
            .bind(client)
            .bind(parent)
            .bind(query.limit)
            .fetch_all(&mut *conn)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Hit {
                    kind: kind_of(r.get("kind"))?,
                    id: r.get("id"),
                    customer_id: r.get("customer_id"),
                    client_id: r.get("client_id"),
                    name: r.get("name"),
                    tiers: r.get("tiers"),
                    outside_name: r.get("outside_name"),
                })
            })
            .collect()
    }
}
