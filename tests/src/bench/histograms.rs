//! Quantiles of a service's latency histograms between two scrapes of its `/metrics`.

use serde::Serialize;

/// A service's `/metrics`, in the Prometheus text format.
pub async fn scrape(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    Ok(http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?)
}

/// One histogram between two scrapes (bucket bounds, so coarse).
#[derive(Debug, Serialize)]
pub struct Phase {
    pub metric: &'static str,
    pub count: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// A histogram's cumulative buckets `(le, count)` from Prometheus text, ascending by bound,
/// summed over its label sets (every queue of a consumer metric, say).
fn buckets(text: &str, metric: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{metric}_bucket{{");
    let mut summed: Vec<(f64, f64)> = Vec::new();
    for (le, n) in text
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse::<f64>().ok()?
            };
            Some((le, l.rsplit(' ').next()?.parse::<f64>().ok()?))
        })
    {
        match summed.iter_mut().find(|(l, _)| *l == le) {
            Some((_, total)) => *total += n,
            None => summed.push((le, n)),
        }
    }
    summed.sort_by(|a, b| a.0.total_cmp(&b.0));
    summed
}

/// Each metric's p50 and p99 between two scrapes: the upper bound of the bucket holding the
/// quantile, in ms.
pub fn phases(before: &str, after: &str, metrics: &[&'static str]) -> Vec<Phase> {
    metrics
        .iter()
        .map(|&metric| {
            let b = buckets(before, metric);
            let delta: Vec<(f64, f64)> = buckets(after, metric)
                .into_iter()
                .map(|(le, n)| {
                    let was = b.iter().find(|(l, _)| *l == le).map_or(0.0, |(_, n)| *n);
                    (le, n - was)
                })
                .collect();
            let count = delta.last().map_or(0.0, |(_, n)| *n);
            let quantile = |q: f64| {
                delta
                    .iter()
                    .find(|(_, n)| *n >= q * count)
                    .map_or(f64::NAN, |(le, _)| le * 1000.0)
            };
            Phase {
                metric,
                count,
                p50_ms: quantile(0.5),
                p99_ms: quantile(0.99),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_sets_are_summed_and_the_quantile_is_a_bucket_bound() {
        let before = "m_bucket{queue=\"a\",le=\"0.01\"} 1\nm_bucket{queue=\"a\",le=\"0.1\"} 1\n\
                      m_bucket{queue=\"a\",le=\"+Inf\"} 1\n";
        // Queue a: 50 more within 10 ms; queue b (new): 50 within 100 ms.
        let after = "m_bucket{queue=\"a\",le=\"0.01\"} 51\nm_bucket{queue=\"a\",le=\"0.1\"} 51\n\
                     m_bucket{queue=\"a\",le=\"+Inf\"} 51\nm_bucket{queue=\"b\",le=\"0.01\"} 0\n\
                     m_bucket{queue=\"b\",le=\"0.1\"} 50\nm_bucket{queue=\"b\",le=\"+Inf\"} 50\n";
        let p = &phases(before, after, &["m"])[0];
        assert_eq!(p.count, 100.0);
        assert_eq!(p.p50_ms, 10.0);
        assert_eq!(p.p99_ms, 100.0);
    }
}
