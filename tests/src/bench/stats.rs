//! Latency samples and the figures reported for them.

use serde::Serialize;

/// Latencies in microseconds plus counts, for one side (service or baseline) of a scenario.
#[derive(Default, Clone)]
pub struct Samples {
    pub latencies_us: Vec<u64>,
    pub errors: u64,
    pub elapsed_s: f64,
}

impl Samples {
    pub fn merge(&mut self, other: Samples) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
        self.elapsed_s += other.elapsed_s;
    }

    pub fn figures(&self) -> Figures {
        let mut l = self.latencies_us.clone();
        l.sort_unstable();
        let pct = |p: f64| -> f64 {
            if l.is_empty() {
                return 0.0;
            }
            // Nearest-rank; the epsilon keeps 99.9% of 1000 at rank 999 despite rounding.
            let idx = ((p / 100.0) * (l.len() as f64) - 1e-9).ceil() as usize;
            l[idx.clamp(1, l.len()) - 1] as f64 / 1000.0
        };
        Figures {
            requests: l.len() as u64,
            errors: self.errors,
            throughput_per_s: if self.elapsed_s > 0.0 {
                l.len() as f64 / self.elapsed_s
            } else {
                0.0
            },
            p50_ms: pct(50.0),
            p99_ms: pct(99.0),
            p999_ms: pct(99.9),
            max_ms: l.last().map_or(0.0, |m| *m as f64 / 1000.0),
        }
    }
}

/// Throughput and latency of one side of a scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub requests: u64,
    pub errors: u64,
    pub throughput_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let s = Samples {
            latencies_us: (1..=1000).map(|i| i * 1000).collect(),
            errors: 2,
            elapsed_s: 2.0,
        };
        let f = s.figures();
        assert_eq!(f.p50_ms, 500.0);
        assert_eq!(f.p99_ms, 990.0);
        assert_eq!(f.p999_ms, 999.0);
        assert_eq!(f.max_ms, 1000.0);
        assert_eq!(f.throughput_per_s, 500.0);
        assert_eq!(f.errors, 2);
        assert_eq!(Samples::default().figures().p99_ms, 0.0);
    }
}
