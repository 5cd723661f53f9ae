//! `rr`: persistent connections doing request/response round trips.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use socketserver_bench::endpoint::Target;

use crate::workers::{self, Outcome};

/// Read/write timeout: a server that stops answering ends the run.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Each of `clients` connections sends `size` bytes and reads the echo
/// back, over and over until `duration` has passed; a broken connection is
/// counted and replaced.
pub fn run(target: &Target, clients: usize, size: usize, duration: Duration) -> Outcome {
    let target = target.clone();
    workers::run(clients, duration, move |i, deadline| {
        let message: Vec<u8> = (0..size).map(|b| (b + i) as u8).collect();
        let mut echo = vec![0u8; size];
        let mut outcome = Outcome::default();
        let mut stream = None;
        while !outcome.done(deadline) {
            let s = match &mut stream {
                Some(s) => s,
                None => match target.connect(IO_TIMEOUT) {
                    Ok(s) => stream.insert(s),
                    Err(e) => {
                        outcome.error(format!("connect: {e}"));
                        continue;
                    }
                },
            };
            let t0 = Instant::now();
            let trip = s.write_all(&message).and_then(|()| s.read_exact(&mut echo));
            match trip {
                Ok(()) if echo == message => outcome.latencies.record(t0.elapsed()),
                Ok(()) => {
                    outcome.error("echo differs from the request");
                    stream = None;
                }
                Err(e) => {
                    outcome.error(format!("round trip: {e}"));
                    stream = None;
                }
            }
        }
        outcome
    })
}
