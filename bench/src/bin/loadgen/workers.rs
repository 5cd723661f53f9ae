//! Running C workers until a deadline and merging what they measured: the
//! measuring code every timed mode (rr, conn, udp) shares.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use socketserver_bench::stats::Latencies;

/// Errors a worker tolerates before it gives up, so a dead server ends the
/// run quickly instead of spinning on failures until the deadline.
pub const ERROR_BUDGET: u64 = 50;

/// Operations one worker performs at most, whatever the deadline says.
pub const MAX_OPS_PER_WORKER: u64 = 50_000_000;

/// What a run measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Successful operations and their latencies.
    pub latencies: Latencies,
    /// Failed operations.
    pub errors: u64,
    /// Datagrams whose reply never came (udp).
    pub lost: u64,
    /// The first error, for the report.
    pub first_error: Option<String>,
    /// From the common start to the last worker's end.
    pub elapsed: Duration,
    /// Overrides the operation count (bulk counts MiB, not operations).
    pub ops_override: Option<f64>,
}

impl Outcome {
    /// The figure rates are computed from.
    pub fn ops(&self) -> f64 {
        self.ops_override.unwrap_or(self.latencies.count() as f64)
    }

    /// Records a failure, keeping the first message.
    pub fn error(&mut self, e: impl std::fmt::Display) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }

    /// Whether the worker should stop: deadline passed, too many errors, or
    /// the operation cap reached.
    pub fn done(&self, deadline: Instant) -> bool {
        Instant::now() >= deadline
            || self.errors >= ERROR_BUDGET
            || self.latencies.count() >= MAX_OPS_PER_WORKER
    }

    fn merge(&mut self, other: Outcome) {
        self.latencies.merge(other.latencies);
        self.errors += other.errors;
        self.lost += other.lost;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Runs `clients` workers, all released at once, each given its index and
/// the common deadline; returns their merged outcome with the elapsed time.
pub fn run<F>(clients: usize, duration: Duration, worker: F) -> Outcome
where
    F: Fn(usize, Instant) -> Outcome + Send + Sync + 'static,
{
    let worker = Arc::new(worker);
    let start_line = Arc::new(Barrier::new(clients + 1));
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let worker = Arc::clone(&worker);
            let start_line = Arc::clone(&start_line);
            thread::spawn(move || {
                start_line.wait();
                worker(i, Instant::now() + duration)
            })
        })
        .collect();
    start_line.wait();
    let start = Instant::now();
    let mut total = Outcome::default();
    for handle in handles {
        match handle.join() {
            Ok(outcome) => total.merge(outcome),
            Err(_) => total.error("a worker thread panicked"),
        }
    }
    total.elapsed = start.elapsed();
    total
}
