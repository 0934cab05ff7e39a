//! Customers created over customer-api's API at a fixed rate, and how long each took to reach a
//! consumer: what hq-creation and search-freshness share.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use time::OffsetDateTime;
use tokio::sync::Mutex;

use super::client::Call;
use super::load::{self, LoadSpec};
use super::stats::Samples;

/// Each customer created, with its `createdAt` (set just before customer-api's commit), and
/// how many creations failed.
pub struct Created {
    pub customers: Vec<(String, OffsetDateTime)>,
    pub errors: u64,
}

/// Creates customers at `rate` a second for `duration` with `concurrency` connections; `body`
/// makes the n-th request's body.
pub async fn create_customers(
    base: &str,
    token: &str,
    concurrency: usize,
    rate: f64,
    duration: Duration,
    body: impl Fn(u64) -> serde_json::Value + Send + Sync + Clone + 'static,
) -> Created {
    let created: Arc<Mutex<Vec<(String, OffsetDateTime)>>> = Arc::default();
    let spec = LoadSpec {
        concurrency,
        duration,
        rate: Some(rate),
    };
    let (token, sink) = (token.to_string(), created.clone());
    let writes = load::run(spec, base, move |mut conn, seq| {
        let call = Call::post_json("/v1/customers", &token, &body(seq));
        let sink = sink.clone();
        async move {
            let ok = match conn.send(&call).await {
                Ok((s, body)) if s == StatusCode::CREATED => {
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    let id = v["id"].as_str().map(String::from);
                    let at = v["createdAt"].as_str().and_then(parse_time);
                    match (id, at) {
                        (Some(id), Some(at)) => {
                            sink.lock().await.push((id, at));
                            true
                        }
                        _ => false,
                    }
                }
                _ => false,
            };
            (conn, ok)
        }
    })
    .await;
    let customers = created.lock().await.clone();
    Created {
        customers,
        errors: writes.errors,
    }
}

/// An RFC 3339 time.
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// The latencies from each customer's creation to when it was `seen` (those seen only).
pub struct Latencies {
    pub timed: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The p99 of the customers created in each 5 s of the run: a stall at start-up shows in
    /// the first, a periodic one in several.
    pub p99_by_5s_ms: Vec<f64>,
}

pub fn latencies(created: &Created, seen: &HashMap<String, OffsetDateTime>) -> Latencies {
    let start = created.customers.iter().map(|(_, at)| *at).min();
    let mut windows: Vec<Vec<u64>> = Vec::new();
    let mut all = Vec::with_capacity(created.customers.len());
    for (id, at) in &created.customers {
        let Some(when) = seen.get(id) else { continue };
        let us = ((*when - *at).as_seconds_f64() * 1e6).max(0.0) as u64;
        all.push(us);
        let w = start.map_or(0, |s| (*at - s).whole_seconds() as usize / 5);
        if windows.len() <= w {
            windows.resize_with(w + 1, Vec::new);
        }
        windows[w].push(us);
    }
    let figures = |latencies_us: Vec<u64>| {
        Samples {
            latencies_us,
            errors: 0,
            elapsed_s: 1.0,
        }
        .figures()
    };
    let timed = all.len() as u64;
    let f = figures(all);
    Latencies {
        timed,
        p50_ms: f.p50_ms,
        p99_ms: f.p99_ms,
        max_ms: f.max_ms,
        p99_by_5s_ms: windows.into_iter().map(|w| figures(w).p99_ms).collect(),
    }
}
