//! `bulk`: one connection echoing N MiB, the writer and the reader running
//! at the same time so the server streams instead of turning around. Every
//! byte read back is checked against what was sent at that offset.

use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use socketserver_bench::endpoint::Target;

use crate::workers::Outcome;

const CHUNK: usize = 64 * 1024;

/// The byte sent at each offset of a chunk (every chunk is the same).
fn pattern() -> Vec<u8> {
    (0..CHUNK).map(|i| (i % 251) as u8).collect()
}

/// Whether `data`, read at stream offset `at`, is what was sent there.
fn intact(pattern: &[u8], at: usize, data: &[u8]) -> bool {
    let mut offset = at % CHUNK;
    let mut rest = data;
    while !rest.is_empty() {
        let take = rest.len().min(CHUNK - offset);
        if rest[..take] != pattern[offset..offset + take] {
            return false;
        }
        rest = &rest[take..];
        offset = 0;
    }
    true
}

/// Sends `mib` MiB, or as much as fits in `duration` (whichever ends
/// first), and reads the echo back until the server's EOF. The rate is MiB/s
/// each way, from the first write to the last byte read. A read or write
/// that waits `io_timeout` ends the run with an error: the server stalled.
pub fn run(target: &Target, mib: usize, duration: Duration, io_timeout: Duration) -> Outcome {
    let mut outcome = Outcome::default();
    let total = mib * (1 << 20);
    let stream = match target.connect(io_timeout) {
        Ok(s) => s,
        Err(e) => {
            outcome.error(format!("connect: {e}"));
            outcome.ops_override = Some(0.0);
            return outcome;
        }
    };
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(e) => {
            outcome.error(format!("clone: {e}"));
            outcome.ops_override = Some(0.0);
            return outcome;
        }
    };
    let mut reader = stream;
    let start = Instant::now();
    let deadline = start + duration;
    let sender = thread::spawn(move || -> std::io::Result<usize> {
        let chunk = pattern();
        let mut sent = 0;
        while sent < total && Instant::now() < deadline {
            writer.write_all(&chunk)?;
            sent += CHUNK;
        }
        writer.shutdown_write()?;
        Ok(sent)
    });
    let mut buf = vec![0u8; CHUNK];
    let expected = pattern();
    let mut got = 0usize;
    // Bounded: every read either makes progress, times out (an error), or
    // ends at EOF; a server echoing more than we sent is an error too.
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if !intact(&expected, got, &buf[..n]) {
                    outcome.error(format!(
                        "the echo differs from what was sent within bytes {got}..{}",
                        got + n
                    ));
                    break;
                }
                got += n;
            }
            Err(e) => {
                outcome.error(format!("read after {got} bytes: {e}"));
                break;
            }
        }
        if got > total {
            outcome.error("the server echoed more than was sent");
            break;
        }
    }
    outcome.elapsed = start.elapsed();
    let sent = match sender.join() {
        Ok(Ok(sent)) => sent,
        Ok(Err(e)) => {
            outcome.error(format!("write: {e}"));
            0
        }
        Err(_) => {
            outcome.error("the writer thread panicked");
            0
        }
    };
    if got != sent && outcome.errors == 0 {
        outcome.error(format!("echoed {got} of {sent} bytes"));
    }
    outcome.ops_override = Some(if outcome.errors == 0 {
        got as f64 / f64::from(1 << 20)
    } else {
        0.0
    });
    outcome
}
