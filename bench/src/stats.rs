//! Latency samples and the figures the table prints: percentiles, medians.

use std::time::Duration;

/// Round-trip latencies of one worker, in microseconds. Bounded, so a very
/// long run cannot grow memory without limit: past `CAP` samples it keeps
/// counting but stops recording.
#[derive(Debug, Default)]
pub struct Latencies {
    micros: Vec<u32>,
    count: u64,
}

impl Latencies {
    /// Samples kept per worker.
    pub const CAP: usize = 4 << 20;

    /// Records one operation that took `took`.
    pub fn record(&mut self, took: Duration) {
        self.count += 1;
        if self.micros.len() < Self::CAP {
            self.micros
                .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
        }
    }

    /// Operations recorded (including those past the cap).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds another worker's samples.
    pub fn merge(&mut self, other: Latencies) {
        self.count += other.count;
        self.micros.extend(other.micros);
    }

    /// The `p`-th percentile (0-100) in microseconds, 0 with no samples.
    pub fn percentile(&mut self, p: f64) -> u32 {
        if self.micros.is_empty() {
            return 0;
        }
        self.micros.sort_unstable();
        let rank = (p / 100.0 * (self.micros.len() - 1) as f64).round() as usize;
        self.micros[rank.min(self.micros.len() - 1)]
    }
}

/// The median of `values` (the mean of the middle two for an even count);
/// `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn percentiles() {
        let mut l = Latencies::default();
        for us in 1..=100 {
            l.record(Duration::from_micros(us));
        }
        assert_eq!(l.percentile(50.0), 51);
        assert_eq!(l.percentile(99.0), 99);
        assert_eq!(l.count(), 100);
    }
}
