//! `search-query`: search-sync answering tenant-scoped searches over a large index, alternated
//! with the same statements under pgbench.
//!
//! The corpus (`--search-docs` documents over `--search-tenants` tenants, each tenant one
//! customer document, 60% clients with company names and 40% contacts with person names, e-mail
//! addresses and cities) is written straight into search-sync's database. The queries mix, in
//! equal parts, a whole word ("globex"), a prefix as typed ("hendr"), a misspelled word
//! ("hendircks") and two words with the last as a prefix ("maria gonz"), each by a token of one
//! random tenant with ViewClient (its clients and their contacts), 20 hits. The pgbench side
//! runs, for each of those queries, the statements search-sync ran for it (recorded with
//! `Postgres::search_statements`, values inlined) in a transaction scoped to the tenant, as
//! the service's runtime role: the same SQL without the HTTP, JSON and typo-rule work around it.
//! The plans of the first query of each sort go to `search-query-plans.txt` in the run's
//! directory (of the statements with their values inlined, so planned for those values, where
//! the service runs generic plans).

use std::time::{Duration, Instant};

use serde_json::json;
use shared_model::auth::{Caller, Permission, claims_for};
use shared_model::db::{self, Scope};
use shared_model::testkit::{self, TestDb};
use sqlx::Connection;

use super::client::Call;
use super::scenarios::{self, Comparison, Options};
use crate::{ServiceProcess, free_port};

mod corpus;

use corpus::{corpus_sql, queries, tenant_id};

pub struct SearchQueryEnv {
    search_db: TestDb,
    amqp: shared_model::config::AmqpConfig,
    search: ServiceProcess,
    opts: Options,
    tenants: usize,
    /// Seconds the corpus took to write.
    pub load_s: f64,
}

impl SearchQueryEnv {
    /// search-sync on a database holding `docs` documents over `tenants` tenants.
    pub async fn start(opts: Options, docs: usize, tenants: usize) -> anyhow::Result<Self> {
        let search_db = TestDb::new(&(search_sync::SERVICE.migrations)()).await;
        let per = (docs / tenants).max(2);
        let started = Instant::now();
        let mut su = search_db.superuser().await;
        let total = per * tenants;
        let chunk = 50_000;
        let mut from = 1;
        while from <= total {
            let to = (from + chunk - 1).min(total);
            sqlx::query(sqlx::AssertSqlSafe(corpus_sql(from, to, per)))
                .execute(&mut su)
                .await?;
            from = to + 1;
        }
        // Every table the corpus wrote (the documents, their keys, the vocabulary), as
        // autovacuum would in a while.
        sqlx::query("VACUUM ANALYZE").execute(&mut su).await?;
        su.close().await.ok();
        let load_s = started.elapsed().as_secs_f64();
        eprintln!("  corpus: {total} documents over {tenants} tenants written in {load_s:.0} s");
        let amqp = testkit::amqp_config("bench-search-query");
        let port = free_port();
        let search = ServiceProcess::start_logged(
            "search-sync",
            port,
            &opts.service_env(&search_db, &amqp, "SEARCH_SYNC", port),
            Some(&opts.workdir.join("search-sync-query.log")),
        )
        .await?;
        Ok(SearchQueryEnv {
            search_db,
            amqp,
            search,
            opts,
            tenants,
            load_s,
        })
    }

    pub async fn stop(self) {
        let _ = self.search.terminate().await;
        crate::delete_services_broker_names(&["search-sync"], &self.search_db, &self.amqp, &[])
            .await;
    }

    /// The statements search-sync runs for `text` by a ViewClient token of tenant `t`, as one
    /// pgbench transaction (on one line each, as the script wants them).
    async fn recorded(&self, t: usize, text: &str, explain: bool) -> anyhow::Result<String> {
        use search_sync::index::postgres::Postgres;
        use search_sync::index::query::{Query, Sort};
        use search_sync::index::{Kind, SearchBackend};
        let tenant = tenant_id(t);
        let caller = Caller::new(claims_for(
            &testkit::auth_config(),
            "bench",
            Some(tenant),
            &[Permission::ViewClient],
            Duration::from_secs(60),
        ));
        let reach = search_sync::search::scope::of(&caller).map_err(|e| e.into_anyhow())?;
        let query = Query {
            text: text.to_string(),
            kinds: vec![Kind::Client, Kind::Contact],
            filter: reach.filter,
            sort: Sort::Relevance,
            facets: Vec::new(),
            limit: 20,
            after: None,
        };
        let mut tx =
            db::begin_with(&self.search_db.pool, reach.rows, Postgres::SEARCH_SETTINGS).await?;
        let (_, statements) = Postgres::search_statements(&mut tx, &query)
            .await
            .map_err(|e| e.into_anyhow())?;
        if explain {
            // The plans, for whoever wonders where the time goes.
            let path = self.opts.workdir.join("search-query-plans.txt");
            let mut out = std::fs::read_to_string(&path).unwrap_or_default();
            for s in statements.iter().filter(|s| !s.contains("set_config")) {
                let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "EXPLAIN (ANALYZE, BUFFERS) {s}"
                )))
                .fetch_all(&mut *tx)
                .await?;
                out.push_str(&format!(
                    "-- {text:?} (tenant {t})\n{}\n\n",
                    plan.join("\n")
                ));
            }
            std::fs::write(path, out)?;
        }
        drop(tx);
        let Scope::Tenant(scoped) = reach.rows else {
            anyhow::bail!("a tenant's search is scoped to the tenant");
        };
        let mut lines = vec![
            "BEGIN;".to_string(),
            format!(
                "SELECT set_config('app.customer_id', '{scoped}', true), set_config('app.platform_admin', 'off', true){};",
                Postgres::SEARCH_SETTINGS
                    .iter()
                    .map(|(name, value)| format!(", set_config('{name}', '{value}', true)"))
                    .collect::<String>()
            ),
        ];
        for s in statements {
            lines.push(format!(
                "{};",
                s.split_whitespace().collect::<Vec<_>>().join(" ")
            ));
        }
        lines.push("COMMIT;".into());
        Ok(lines.join("\n"))
    }

    /// `search-query`, against its pgbench baseline.
    pub async fn compare(&self) -> anyhow::Result<Comparison> {
        let mix = queries(self.tenants);
        let mut script = format!("\\set q random(1, {})\n", mix.len());
        let mut calls = Vec::with_capacity(mix.len());
        for (n, (t, text)) in mix.iter().enumerate() {
            let branch = if n == 0 { "\\if" } else { "\\elif" };
            script.push_str(&format!("{branch} :q = {}\n", n + 1));
            script.push_str(&self.recorded(*t, text, n < 4).await?);
            script.push('\n');
            let token = testkit::token("bench", Some(tenant_id(*t)), &[Permission::ViewClient]);
            calls.push(Call::post_json(
                "/v1/search",
                &token,
                &json!({"q": text, "kinds": ["client", "contact"], "limit": 20}),
            ));
        }
        script.push_str("\\endif\n");
        scenarios::alternate_calls(
            &self.opts,
            &self.search_db.app_url,
            "search-query",
            script,
            &self.search.base,
            calls,
            40,
        )
        .await
    }
}
