//! A closed-loop (or fixed-arrival-rate) HTTP load generator.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::Conn;
use super::stats::Samples;

#[derive(Clone, Copy, Debug)]
pub struct LoadSpec {
    pub concurrency: usize,
    pub duration: Duration,
    /// Requests per second over all workers; `None` means each worker sends as fast as it can.
    pub rate: Option<f64>,
}

/// Threads of the generator, each with its own single-threaded runtime and its share of the
/// connections: pgbench's design (`-j2` in the baselines). A work-stealing runtime would wake
/// its other worker for every request that arrives while one is busy, and those wake-ups cost
/// the cores the service and the database share with the generator.
pub const GENERATOR_THREADS: usize = 2;

/// Runs `request(conn, seq)` from `concurrency` workers for `duration`, each worker with its own
/// connection to `base`, which `request` hands back with whether the answer was right. With a
/// rate, each request has a scheduled start, and a request sent late because the previous one
/// was slow counts its latency from then (no coordinated omission). The workers run on
/// [`GENERATOR_THREADS`] threads of their own.
pub async fn run<F, Fut>(spec: LoadSpec, base: &str, request: F) -> Samples
where
    F: Fn(Conn, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (Conn, bool)> + Send + 'static,
{
    let request = Arc::new(request);
    let start = Instant::now();
    let threads = spec.concurrency.clamp(1, GENERATOR_THREADS);
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let request = request.clone();
        let base = base.to_string();
        let handle = std::thread::Builder::new()
            .name(format!("load-{t}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the load generator");
                rt.block_on(async move {
                    let workers: Vec<_> = (t..spec.concurrency)
                        .step_by(threads)
                        .map(|w| {
                            tokio::spawn(worker(spec, start, w, Conn::new(&base), request.clone()))
                        })
                        .collect();
                    let mut all = Samples::default();
                    for w in workers {
                        if let Ok(s) = w.await {
                            all.merge(s);
                        }
                    }
                    all
                })
            })
            .expect("starting a load generator thread");
        handles.push(handle);
    }
    let mut all = tokio::task::spawn_blocking(move || {
        let mut all = Samples::default();
        for h in handles {
            if let Ok(s) = h.join() {
                all.merge(s);
            }
        }
        all
    })
    .await
    .unwrap_or_default();
    all.elapsed_s = start.elapsed().as_secs_f64();
    all
}

/// One worker: requests back to back (or on schedule) until the deadline.
async fn worker<F, Fut>(
    spec: LoadSpec,
    start: Instant,
    w: usize,
    conn: Conn,
    request: Arc<F>,
) -> Samples
where
    F: Fn(Conn, u64) -> Fut,
    Fut: Future<Output = (Conn, bool)>,
{
    let deadline = start + spec.duration;
    let mut conn = Some(conn);
    let mut s = Samples::default();
    let mut k: u64 = 0;
    loop {
        let seq = k * spec.concurrency as u64 + w as u64;
        let scheduled = match spec.rate {
            Some(rate) => start + Duration::from_secs_f64(seq as f64 / rate),
            None => Instant::now(),
        };
        if scheduled >= deadline {
            break;
        }
        // Behind schedule (the service was slow): latency counts from the scheduled start.
        // Ahead of it: from when the timer woke us, whose lateness (tokio's timer has
        // millisecond resolution) is the generator's, not the service's.
        let from = match scheduled.checked_duration_since(Instant::now()) {
            Some(wait) => {
                tokio::time::sleep(wait).await;
                Instant::now()
            }
            None => scheduled,
        };
        let (c, ok) = request(conn.take().expect("handed back"), seq).await;
        conn = Some(c);
        let us = from.elapsed().as_micros() as u64;
        if ok {
            s.latencies_us.push(us);
        } else {
            s.errors += 1;
        }
        k += 1;
    }
    s
}
