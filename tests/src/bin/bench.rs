//! Load generator and benchmark harness.
//!
//! ```sh
//! deploy/local/bench.sh [SCENARIO ...] [-- OPTIONS]     # builds release binaries, then runs
//! target/release/bench all --duration 30 --concurrency 32
//! ```
//! Scenarios: `get-customer`, `create-customer`, `list-customers` (each alternated with its
//! pgbench baseline), `event-delivery` (commit → consumer latency at a fixed write rate),
//! `verify-key` (partition-keys verifying keys, 1% invalid, alternated with a pgbench lookup of
//! one key row by hash), `revocation-visibility` (revoke on one replica → first refusal on
//! another), `hq-creation` and `list-contacts` (org-structure), `search-freshness` and
//! `search-key-revocation` (search-sync: revoke a search key on one replica → first refusal on
//! another), `search-query` (tenant-scoped searches over `--search-docs` documents, alternated
//! with the same statements under pgbench), `startup` (start-to-ready and idle memory of every
//! service), `all`, and `smoke`
//! (a few seconds of everything, for CI).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde_json::json;
use tests::bench::scenarios::{self, Env, Options};

/// Every scenario, in the order `all` runs them.
const ALL: [&str; 12] = [
    "get-customer",
    "create-customer",
    "list-customers",
    "event-delivery",
    "verify-key",
    "revocation-visibility",
    "hq-creation",
    "list-contacts",
    "search-freshness",
    "search-key-revocation",
    "search-query",
    "startup",
];

#[derive(Parser, Debug)]
#[command(about = "Customer-platform benchmark harness")]
struct Cli {
    /// Scenarios to run: get-customer, create-customer, list-customers, event-delivery,
    /// verify-key, revocation-visibility, hq-creation, list-contacts, search-freshness,
    /// search-key-revocation, search-query, startup, all, smoke.
    #[arg(required = true)]
    scenarios: Vec<String>,
    /// Measured seconds per side (service and baseline), split over --rounds alternations.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Warm-up seconds before measuring each scenario.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Alternations of service and baseline.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Fixed arrival rate (requests/s) instead of closed-loop load.
    #[arg(long)]
    rate: Option<f64>,
    #[arg(long, default_value_t = 10_000)]
    customers: usize,
    #[arg(long, default_value_t = 100)]
    tenants: usize,
    /// Writes per second in event-delivery.
    #[arg(long, default_value_t = 500.0)]
    event_rate: f64,
    /// Seconds of writing in event-delivery.
    #[arg(long, default_value_t = 60)]
    event_duration: u64,
    /// Business customers created per second in hq-creation.
    #[arg(long, default_value_t = 100.0)]
    hq_rate: f64,
    /// Seconds of creating customers in hq-creation.
    #[arg(long, default_value_t = 30)]
    hq_duration: u64,
    /// Customers created per second in search-freshness.
    #[arg(long, default_value_t = 500.0)]
    search_rate: f64,
    /// Seconds of creating customers in search-freshness.
    #[arg(long, default_value_t = 30)]
    search_duration: u64,
    /// Documents in search-query's index.
    #[arg(long, default_value_t = 1_000_000)]
    search_docs: usize,
    /// Tenants they belong to.
    #[arg(long, default_value_t = 1_000)]
    search_tenants: usize,
    /// Runtime worker threads of each service under test (`TOKIO_WORKER_THREADS`); by default
    /// one per core.
    #[arg(long)]
    service_workers: Option<usize>,
    /// Where the JSON result and logs go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    let mut list: Vec<String> = Vec::new();
    for s in &cli.scenarios {
        match s.as_str() {
            "all" => list.extend(ALL.map(String::from)),
            "smoke" => {
                list.extend(ALL.map(String::from));
                cli.duration = 2;
                cli.warmup = 1;
                cli.rounds = 1;
                cli.customers = cli.customers.min(500);
                cli.tenants = cli.tenants.min(10);
                cli.event_rate = cli.event_rate.min(50.0);
                cli.event_duration = cli.event_duration.min(3);
                cli.hq_rate = cli.hq_rate.min(20.0);
                cli.hq_duration = cli.hq_duration.min(2);
                cli.search_rate = cli.search_rate.min(20.0);
                cli.search_duration = cli.search_duration.min(2);
                cli.search_docs = cli.search_docs.min(5_000);
                cli.search_tenants = cli.search_tenants.min(10);
            }
            one if ALL.contains(&one) => list.push(one.to_string()),
            other => anyhow::bail!("unknown scenario {other}"),
        }
    }
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let workdir = cli.out.join(format!("run-{stamp}"));
    std::fs::create_dir_all(&workdir)?;
    let workdir = workdir.canonicalize()?;
    let opts = Options {
        duration: Duration::from_secs(cli.duration),
        warmup: Duration::from_secs(cli.warmup),
        rounds: cli.rounds,
        concurrency: cli.concurrency,
        rate: cli.rate,
        customers: cli.customers,
        tenants: cli.tenants,
        event_rate: cli.event_rate,
        event_duration: Duration::from_secs(cli.event_duration),
        workdir: workdir.clone(),
        service_workers: cli.service_workers,
    };

    let mut comparisons = Vec::new();
    let mut delivery = None;
    let mut delivery_sweep = None;
    let mut startup = None;
    const KEY_SCENARIOS: [&str; 2] = ["verify-key", "revocation-visibility"];
    const ORG_SCENARIOS: [&str; 2] = ["hq-creation", "list-contacts"];
    const SEARCH_SCENARIOS: [&str; 2] = ["search-freshness", "search-key-revocation"];
    const QUERY_SCENARIOS: [&str; 1] = ["search-query"];
    let own_env = |s: &String| {
        [
            &KEY_SCENARIOS[..],
            &ORG_SCENARIOS,
            &SEARCH_SCENARIOS,
            &QUERY_SCENARIOS,
        ]
        .iter()
        .any(|set| set.contains(&s.as_str()))
    };
    let needs_env = list.iter().any(|s| s != "startup" && !own_env(s));
    let env = if needs_env {
        Some(Env::start(opts.clone()).await?)
    } else {
        None
    };
    for s in list.iter().filter(|s| !own_env(s)) {
        eprintln!("running {s} ...");
        match s.as_str() {
            "event-delivery" => {
                let (d, sweep) = env.as_ref().expect("env").event_delivery().await?;
                delivery = Some(d);
                delivery_sweep = Some(sweep);
            }
            "startup" => {}
            other => comparisons.push(env.as_ref().expect("env").compare(other).await?),
        }
    }
    if let Some(env) = env {
        env.stop().await;
    }
    let mut revocation = None;
    if list.iter().any(|s| KEY_SCENARIOS.contains(&s.as_str())) {
        let keys = tests::bench::keys::KeysEnv::start(opts.clone()).await?;
        if list.iter().any(|s| s == "verify-key") {
            eprintln!("running verify-key ...");
            comparisons.push(keys.compare_verify().await?);
        }
        if list.iter().any(|s| s == "revocation-visibility") {
            eprintln!("running revocation-visibility ...");
            let samples = if cli.duration <= 2 { 3 } else { 50 };
            revocation = Some(keys.revocation_visibility(samples).await?);
        }
        keys.stop().await;
    }
    let mut hq = None;
    if list.iter().any(|s| ORG_SCENARIOS.contains(&s.as_str())) {
        let org = tests::bench::org::OrgEnv::start(opts.clone()).await?;
        if list.iter().any(|s| s == "hq-creation") {
            eprintln!("running hq-creation ...");
            hq = Some(
                org.hq_creation(cli.hq_rate, Duration::from_secs(cli.hq_duration))
                    .await?,
            );
        }
        if list.iter().any(|s| s == "list-contacts") {
            eprintln!("running list-contacts ...");
            comparisons.push(org.compare_list_contacts().await?);
        }
        org.stop().await;
    }
    let mut freshness = None;
    let mut key_revocation = None;
    if list.iter().any(|s| SEARCH_SCENARIOS.contains(&s.as_str())) {
        let search = tests::bench::search::SearchEnv::start(opts.clone()).await?;
        if list.iter().any(|s| s == "search-freshness") {
            eprintln!("running search-freshness ...");
            freshness = Some(
                search
                    .freshness(cli.search_rate, Duration::from_secs(cli.search_duration))
                    .await?,
            );
        }
        if list.iter().any(|s| s == "search-key-revocation") {
            eprintln!("running search-key-revocation ...");
            let samples = if cli.duration <= 2 { 3 } else { 50 };
            key_revocation = Some(search.key_revocation(samples).await?);
        }
        search.stop().await;
    }
    if list.iter().any(|s| s == "search-query") {
        let env = tests::bench::search_query::SearchQueryEnv::start(
            opts.clone(),
            cli.search_docs,
            cli.search_tenants,
        )
        .await?;
        eprintln!("running search-query ...");
        comparisons.push(env.compare().await?);
        env.stop().await;
    }
    if list.iter().any(|s| s == "startup") {
        startup = Some(scenarios::startup(&workdir).await?);
    }

    println!();
    println!(
        "{:<16} {:>10} {:>9} {:>9} {:>9} {:>7} | {:>10} {:>9} {:>9} {:>9} | {:>6}",
        "scenario",
        "req/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "errors",
        "pg tx/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "ratio"
    );
    for c in &comparisons {
        let (s, b) = (&c.service, &c.baseline);
        println!(
            "{:<16} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>7} | {:>10.0} {:>9.2} {:>9.2} {:>9.2} | {:>5.0}%",
            c.scenario,
            s.throughput_per_s,
            s.p50_ms,
            s.p99_ms,
            s.p999_ms,
            s.errors,
            b.throughput_per_s,
            b.p50_ms,
            b.p99_ms,
            b.p999_ms,
            c.ratio * 100.0
        );
    }
    if let Some(d) = &delivery {
        println!(
            "\nevent-delivery at {}/s for {}s: written {} (errors {}), received {}, lost {}, duplicated {}; \
             commit→consumer p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms \
             (started after the relay published {} events left by earlier scenarios in {:.1} s)",
            d.rate_per_s,
            d.duration_s,
            d.written,
            d.write_errors,
            d.received,
            d.lost,
            d.duplicated,
            d.p50_ms,
            d.p99_ms,
            d.max_ms,
            d.backlog_events,
            d.backlog_drain_s
        );
        print_phases("", &d.relay_phases);
    }
    if let Some(s) = &delivery_sweep {
        let tried: Vec<String> = s
            .tried
            .iter()
            .map(|t| format!("{}/s p99 {:.1} ms", t.rate_per_s, t.p99_ms))
            .collect();
        match (s.within_50ms_rate_per_s, s.within_50ms_fraction) {
            (Some(r), Some(f)) => println!(
                "  p99 within 50 ms up to {r}/s = {:.0}% of pgbench inserts ({:.0}/s); tried {}",
                f * 100.0,
                s.pgbench_inserts_per_s,
                tried.join(", ")
            ),
            _ => println!(
                "  p99 within 50 ms at no rate tried (pgbench inserts {:.0}/s); tried {}",
                s.pgbench_inserts_per_s,
                tried.join(", ")
            ),
        }
    }

    if let Some(r) = &revocation {
        println!(
            "\nrevocation-visibility ({} keys, revoked on one replica, verified on another): \
             p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            r.samples, r.p50_ms, r.p99_ms, r.max_ms
        );
    }
    if let Some(h) = &hq {
        println!(
            "\nhq-creation at {}/s for {}s: created {} (errors {}), HQ missing {}, duplicated {}; \
             customer-api commit → HQ committed in org-structure ({} timed) p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            h.rate_per_s,
            h.duration_s,
            h.created,
            h.create_errors,
            h.missing,
            h.duplicated,
            h.timed,
            h.p50_ms,
            h.p99_ms,
            h.max_ms
        );
        let windows: Vec<String> = h.p99_by_5s_ms.iter().map(|p| format!("{p:.0}")).collect();
        println!("  p99 of each 5 s, ms: {}", windows.join(" "));
        print_phases("customer-api ", &h.customer_api_phases);
        print_phases("org-structure ", &h.org_phases);
    }
    if let Some(f) = &freshness {
        println!(
            "\nsearch-freshness at {}/s for {}s: created {} (errors {}), missing {}; \
             customer-api commit → document written in search-sync p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            f.rate_per_s,
            f.duration_s,
            f.created,
            f.create_errors,
            f.missing,
            f.p50_ms,
            f.p99_ms,
            f.max_ms
        );
        let windows: Vec<String> = f.p99_by_5s_ms.iter().map(|p| format!("{p:.0}")).collect();
        println!("  p99 of each 5 s, ms: {}", windows.join(" "));
        print_phases("customer-api ", &f.customer_api_phases);
        print_phases("search-sync ", &f.search_phases);
    }
    if let Some(r) = &key_revocation {
        println!(
            "\nsearch-key-revocation ({} keys, revoked on one search-sync, searched with on another): \
             p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            r.samples, r.p50_ms, r.p99_ms, r.max_ms
        );
    }
    if let Some(st) = &startup {
        println!(
            "\n{:<16} {:>16} {:>14}",
            "service", "start→ready ms", "idle RSS MB"
        );
        for s in st {
            println!(
                "{:<16} {:>16.0} {:>14.1}",
                s.service, s.start_to_ready_ms, s.idle_rss_mb
            );
        }
    }
    let result = json!({
        "time": stamp,
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "machine": { "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0) },
        "options": opts,
        "scenarios": comparisons,
        "eventDelivery": delivery,
        "eventDeliverySweep": delivery_sweep,
        "revocationVisibility": revocation,
        "hqCreation": hq,
        "searchFreshness": freshness,
        "searchKeyRevocation": key_revocation,
        "startup": startup,
    });
    let path = cli.out.join(format!("result-{stamp}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&result)?)?;
    println!("\nresult: {}", path.display());
    let failed = delivery
        .as_ref()
        .is_some_and(|d| d.lost > 0 || d.duplicated > 0);
    anyhow::ensure!(!failed, "events were lost or duplicated");
    let hq_failed = hq
        .as_ref()
        .is_some_and(|h| h.missing > 0 || h.duplicated > 0);
    anyhow::ensure!(!hq_failed, "HQ locations were missing or duplicated");
    anyhow::ensure!(
        freshness.as_ref().is_none_or(|f| f.missing == 0),
        "customers were missing from the search index"
    );
    Ok(())
}

fn print_phases(service: &str, phases: &[tests::bench::histograms::Phase]) {
    for p in phases {
        println!(
            "  {:<46} n {:>7.0}  p50 ≤ {:>7.1} ms  p99 ≤ {:>7.1} ms",
            format!("{service}{}", p.metric),
            p.count,
            p.p50_ms,
            p.p99_ms
        );
    }
}
