//! The physical ceiling: `pgbench` against the same PostgreSQL, at the same concurrency, with
//! scripts of the same SQL shape the service runs. Per-transaction latencies come from pgbench's
//! own transaction log.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use super::stats::Samples;

/// Seeded customers have ids derived from their number, so a script can pick one at random.
pub const SEEDED_ID_SQL: &str =
    "('00000000-0000-7000-8000-' || lpad(to_hex(:n::bigint), 12, '0'))::uuid";

pub fn read_script(customers: usize) -> String {
    format!(
        "\\set n random(1, {customers})\n\
         SELECT customer_id, name, customer_type, email, phone, website, address, locale, \
         business_profile, session_expiration_seconds, bootstrap_tenant_key, products, status, \
         version, created_at, created_by, updated_at, updated_by FROM customers WHERE customer_id = {SEEDED_ID_SQL};\n"
    )
}

pub fn write_script() -> String {
    "BEGIN;\n\
     INSERT INTO customers (customer_id, name, customer_type, bootstrap_tenant_key, products, created_by, updated_by) \
     VALUES (gen_random_uuid(), 'Baseline Customer', 'consumer', md5(random()::text || clock_timestamp()::text), '{}', 'pgbench', 'pgbench');\n\
     INSERT INTO bench_outbox (event_id, customer_id, routing_key, payload) \
     VALUES (gen_random_uuid(), gen_random_uuid(), 'customer.created', convert_to(repeat('x', 900), 'UTF8'));\n\
     END;\n"
        .to_string()
}

/// Runs pgbench for `duration` and returns its per-transaction latencies.
pub async fn run(
    conninfo: &str,
    script: &str,
    concurrency: usize,
    duration: Duration,
    workdir: &Path,
) -> anyhow::Result<Samples> {
    let dir = workdir.join(format!("pgbench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let script_path = dir.join("script.sql");
    std::fs::write(&script_path, script)?;
    let out = tokio::process::Command::new("pgbench")
        .current_dir(&dir)
        .args(["-n", "-M", "prepared", "-l", "--log-prefix=tx"])
        .arg(format!("-c{concurrency}"))
        .arg(format!("-j{}", concurrency.min(2)))
        .arg(format!("-T{}", duration.as_secs().max(1)))
        .arg("-f")
        .arg(&script_path)
        .arg(conninfo)
        .output()
        .await
        .context("running pgbench (install PostgreSQL's client tools)")?;
    if !out.status.success() {
        anyhow::bail!("pgbench failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let failed: u64 = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("number of failed transactions: "))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut samples = Samples {
        errors: failed,
        elapsed_s: duration.as_secs().max(1) as f64,
        ..Default::default()
    };
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if !path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("tx"))
        {
            continue;
        }
        for line in std::fs::read_to_string(&path)?.lines() {
            // client_id transaction_no time_us script_no time_epoch time_us_frac
            if let Some(us) = line
                .split_whitespace()
                .nth(2)
                .and_then(|v| v.parse::<u64>().ok())
            {
                samples.latencies_us.push(us);
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(samples)
}
