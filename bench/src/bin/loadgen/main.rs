//! `loadgen`: the benchmark's load generator (std only).
//!
//! ```text
//! loadgen rr   (--tcp ADDR | --unix PATH) [-c CLIENTS] [-s SIZE] [-d SECS]
//! loadgen conn (--tcp ADDR | --unix PATH) [-c CLIENTS] [-s SIZE] [-d SECS]
//! loadgen bulk (--tcp ADDR | --unix PATH) [--mib N] [-d SECS] [--timeout SECS]
//! loadgen udp  --udp ADDR [-c CLIENTS] [-s SIZE] [-d SECS]
//! ```
//!
//! It prints one machine-readable line, `result mode=.. ops=.. secs=..
//! rate=.. p50_us=.. p99_us=.. errors=..` (bulk: `ops` in MiB, `rate` in
//! MiB/s; udp adds `lost=..`), and exits 0, or 1 when nothing succeeded.
//! Every loop is bounded in time and count and stops by itself.

mod bulk;
mod conn;
mod rr;
mod udp;
mod workers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use socketserver_bench::endpoint::Target;

use workers::Outcome;

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    about = "Load generator of the socketserver benchmark"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// C persistent connections doing S-byte round trips.
    Rr(Timed),
    /// C workers, a new connection per S-byte round trip, as Python's clients do.
    Conn(Timed),
    /// One connection echoing N MiB (or what fits in D seconds), writer and
    /// reader concurrent.
    Bulk {
        #[command(flatten)]
        target: StreamTarget,
        /// MiB to send (and receive back) at most.
        #[arg(long, default_value_t = 1024)]
        mib: usize,
        /// Seconds of writing at most.
        #[arg(short, long, default_value_t = 2.0)]
        duration: f64,
        /// Seconds a read or write may wait before the run fails (the server stalled).
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
    /// C clients doing S-byte datagram round trips (a reply missing after
    /// 200 ms counts as lost).
    Udp {
        /// The UDP server.
        #[arg(long, value_name = "ADDR")]
        udp: SocketAddr,
        #[command(flatten)]
        load: Load,
    },
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct StreamTarget {
    /// A TCP server.
    #[arg(long, value_name = "ADDR")]
    tcp: Option<SocketAddr>,
    /// A Unix stream server.
    #[arg(long, value_name = "PATH")]
    unix: Option<PathBuf>,
}

impl StreamTarget {
    fn target(&self) -> Target {
        match (&self.tcp, &self.unix) {
            (Some(addr), _) => Target::Tcp(*addr),
            (None, Some(path)) => Target::Unix(path.clone()),
            // clap's group makes exactly one of them present.
            (None, None) => socketserver_bench::die("loadgen", "--tcp or --unix is required"),
        }
    }
}

#[derive(Debug, Args)]
struct Timed {
    #[command(flatten)]
    target: StreamTarget,
    #[command(flatten)]
    load: Load,
}

#[derive(Debug, Args, Clone, Copy)]
struct Load {
    /// Concurrent clients.
    #[arg(short, long, default_value_t = 8)]
    clients: usize,
    /// Bytes per message.
    #[arg(short, long, default_value_t = 64)]
    size: usize,
    /// Seconds to run.
    #[arg(short, long, default_value_t = 2.0)]
    duration: f64,
}

impl Load {
    fn duration(&self) -> Duration {
        seconds(self.duration)
    }

    fn check(&self) {
        if !(1..=1024).contains(&self.clients) || !(1..=65536).contains(&self.size) {
            socketserver_bench::die("loadgen", "--clients must be 1-1024, --size 1-65536");
        }
    }
}

/// A `--duration`: 0-600 seconds, or a usage error.
fn seconds(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| *d <= Duration::from_secs(600))
        .unwrap_or_else(|| socketserver_bench::die("loadgen", "--duration must be 0-600 seconds"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (name, outcome) = match &cli.mode {
        Mode::Rr(t) => {
            t.load.check();
            (
                "rr",
                rr::run(
                    &t.target.target(),
                    t.load.clients,
                    t.load.size,
                    t.load.duration(),
                ),
            )
        }
        Mode::Conn(t) => {
            t.load.check();
            (
                "conn",
                conn::run(
                    &t.target.target(),
                    t.load.clients,
                    t.load.size,
                    t.load.duration(),
                ),
            )
        }
        Mode::Bulk {
            target,
            mib,
            duration,
            timeout,
        } => {
            if !(1..=65536).contains(mib) {
                socketserver_bench::die("loadgen", "--mib must be 1-65536");
            }
            let duration = seconds(*duration);
            let timeout = seconds(*timeout).max(Duration::from_millis(1));
            ("bulk", bulk::run(&target.target(), *mib, duration, timeout))
        }
        Mode::Udp { udp, load } => {
            load.check();
            (
                "udp",
                udp::run(*udp, load.clients, load.size, load.duration()),
            )
        }
    };
    report(name, outcome)
}

/// Prints the result line (and the first error, on stderr).
fn report(mode: &str, mut outcome: Outcome) -> ExitCode {
    if let Some(e) = &outcome.first_error {
        eprintln!("loadgen {mode}: {} error(s), first: {e}", outcome.errors);
    }
    let secs = outcome.elapsed.as_secs_f64();
    let ops = outcome.ops();
    let rate = if secs > 0.0 { ops / secs } else { 0.0 };
    println!(
        "result mode={mode} ops={ops:.3} secs={secs:.3} rate={rate:.3} p50_us={} p99_us={} errors={} lost={}",
        outcome.latencies.percentile(50.0),
        outcome.latencies.percentile(99.0),
        outcome.errors,
        outcome.lost,
    );
    if ops > 0.0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
