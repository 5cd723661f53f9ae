//! `conn`: a new connection per request, as Python's socketserver clients
//! do: connect, send, read the reply, close.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use socketserver_bench::endpoint::Target;

use crate::workers::{self, Outcome};

const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Each of `clients` workers opens a connection, sends `size` bytes, reads
/// them back and closes, until `duration` has passed. The latency recorded
/// is the whole exchange, connect included.
pub fn run(target: &Target, clients: usize, size: usize, duration: Duration) -> Outcome {
    let target = target.clone();
    workers::run(clients, duration, move |i, deadline| {
        let message: Vec<u8> = (0..size).map(|b| (b + i) as u8).collect();
        let mut echo = vec![0u8; size];
        let mut outcome = Outcome::default();
        while !outcome.done(deadline) {
            let t0 = Instant::now();
            let exchange = target.connect(IO_TIMEOUT).and_then(|mut s| {
                s.write_all(&message)?;
                s.read_exact(&mut echo)
            });
            match exchange {
                Ok(()) if echo == message => outcome.latencies.record(t0.elapsed()),
                Ok(()) => outcome.error("echo differs from the request"),
                Err(e) => outcome.error(e),
            }
        }
        outcome
    })
}
