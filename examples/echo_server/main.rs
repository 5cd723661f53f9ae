//! `echo_server`: a standalone echo server for benchmarks and outside
//! clients, over every transport and strategy (see DESIGN.md, "Examples").
//!
//! ```text
//! echo_server [--transport tcp|udp|unix|unix-dgram|smoltcp-tcp|smoltcp-udp]
//!             [--strategy sync|threading|forking|multiplexed]
//!             [--addr ADDR] [--grace SECS] [--max-connections N]
//!             [--tap NAME --ip A.B.C.D/NN [--mac MAC] [--pcap PATH]]
//! ```
//!
//! The first stdout line is `listening on ADDR`. SIGINT or SIGTERM stops
//! accepting at once, lets in-flight requests finish within `--grace`
//! seconds, then ends the rest and exits 0. Bad flags or addresses exit 2
//! with the usage on stderr; runtime failures exit 1 with one line naming
//! the address and the OS error.

mod args;
mod signals;
mod smoltcp_transport;
mod std_transport;

use std::process::ExitCode;

use clap::Parser;

use args::{Args, Transport};

fn main() -> ExitCode {
    let args = Args::parse();
    // handle_error reports (log's error level) go to stderr; RUST_LOG shows more.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("error"))
        .format(|buf, record| {
            use std::io::Write;
            writeln!(buf, "{}: {}", record.target(), record.args())
        })
        .init();
    // The one place transports are dispatched.
    match args.transport {
        Transport::Tcp | Transport::Udp | Transport::Unix | Transport::UnixDgram => {
            std_transport::run(&args)
        }
        // smoltcp transports: implemented in smoltcp_transport.rs.
        Transport::SmoltcpTcp | Transport::SmoltcpUdp => smoltcp_transport::run(&args),
    }
}
