//! The command line of `echo_server`: every transport's flags in one place.

use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, Parser, ValueEnum, error::ErrorKind};

/// Where the server listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// TCP over the OS (IPv4 or IPv6).
    Tcp,
    /// UDP over the OS.
    Udp,
    /// A Unix stream socket at `--addr PATH`.
    Unix,
    /// A Unix datagram socket at `--addr PATH`.
    UnixDgram,
    /// TCP on the smoltcp userspace stack over a TAP device.
    SmoltcpTcp,
    /// UDP on the smoltcp userspace stack over a TAP device.
    SmoltcpUdp,
}

/// How requests are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    /// One request at a time.
    Sync,
    /// A thread per request.
    Threading,
    /// A child process per request.
    Forking,
    /// Async handlers from one thread (datagram transports: as `sync`).
    Multiplexed,
}

/// An echo server for benchmarks and outside clients.
#[derive(Debug, Parser)]
#[command(name = "echo_server", version, about)]
pub struct Args {
    /// The transport.
    #[arg(long, value_enum, default_value_t = Transport::Tcp)]
    pub transport: Transport,

    /// How requests are served.
    #[arg(long, value_enum, default_value_t = Strategy::Sync)]
    pub strategy: Strategy,

    /// HOST:PORT (IPv4, [IPv6]:PORT or a name; default 127.0.0.1:0), or the
    /// socket path for unix transports (required there).
    #[arg(long, value_name = "ADDR")]
    pub addr: Option<String>,

    /// `multiplexed`: connections served at once; more wait in the backlog
    /// (default 10000 on OS sockets; on smoltcp, and at most, its pool of 16).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,

    /// Seconds in-flight requests get to finish after SIGINT or SIGTERM.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub grace: f64,

    /// smoltcp transports: the TAP device to attach to.
    #[arg(long, value_name = "NAME")]
    pub tap: Option<String>,

    /// smoltcp transports: the stack's address, A.B.C.D/NN.
    #[arg(long, value_name = "A.B.C.D/NN")]
    pub ip: Option<String>,

    /// smoltcp transports: the stack's MAC address.
    #[arg(long, value_name = "MAC")]
    pub mac: Option<String>,

    /// smoltcp transports: capture every Ethernet frame the stack sends and
    /// receives to a new pcap file at PATH (replaced if it exists); open it
    /// with Wireshark or `tshark -r PATH`.
    #[arg(long, value_name = "PATH")]
    pub pcap: Option<PathBuf>,
}

impl Args {
    /// The grace period; a negative or non-finite value is a usage error.
    pub fn grace(&self) -> Duration {
        Duration::try_from_secs_f64(self.grace).unwrap_or_else(|_| {
            usage_error(&format!(
                "--grace {}: not a duration in seconds",
                self.grace
            ))
        })
    }
}

impl Args {
    /// `--max-connections`, or `default`; only `multiplexed` takes it.
    pub fn max_connections(&self, default: usize) -> usize {
        match self.max_connections {
            Some(_) if self.strategy != Strategy::Multiplexed => {
                usage_error("--max-connections applies to --strategy multiplexed")
            }
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            None => default,
        }
    }
}

/// Prints `message` with the usage on stderr and exits with status 2, as
/// clap does for bad flags.
pub fn usage_error(message: &str) -> ! {
    Args::command()
        .error(ErrorKind::ValueValidation, message)
        .exit()
}
