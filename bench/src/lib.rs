//! The benchmark of `socketserver`: the parts its binaries share.
//!
//! The binaries are `loadgen` (the load generator), the hand-written
//! baselines (`baseline-threads`, `baseline-fork`, `baseline-udp`,
//! `baseline-tokio`, `baseline-smoltcp`) and `bench`, the driver that runs
//! every server as a separate process and prints the table. This crate is
//! not a library for users: it is not published and its API may change with
//! every run of the matrix.

#![deny(missing_docs)]

pub mod cpu;
pub mod endpoint;
pub mod listen;
pub mod pin;
pub mod stats;

use std::io::Write;

/// Prints `listening on ADDR` as the first stdout line and flushes it, the
/// contract every server of the matrix follows so the driver knows it serves.
pub fn announce(addr: &dyn std::fmt::Display) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {addr}")?;
    out.flush()
}

/// Prints `what: error` on stderr and exits with status 1: binaries of the
/// benchmark stop with a clear message rather than a panic.
pub fn die(what: &str, error: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {error}");
    std::process::exit(1)
}
