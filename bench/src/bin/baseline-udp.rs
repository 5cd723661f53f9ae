//! Baseline: a hand-written UDP echo on one thread.

use std::net::{SocketAddr, UdpSocket};

use clap::Parser;
use socketserver_bench::{announce, die};

/// Python's `max_packet_size`: the server under test reads at most this much.
const MAX_PACKET: usize = 8192;

#[derive(Debug, Parser)]
#[command(about = "Baseline: UDP echo")]
struct Cli {
    /// Address to bind (port 0: the kernel chooses).
    #[arg(long, value_name = "ADDR")]
    udp: SocketAddr,
}

fn main() {
    let cli = Cli::parse();
    let socket = UdpSocket::bind(cli.udp).unwrap_or_else(|e| die("baseline-udp: bind", e));
    let name = socket
        .local_addr()
        .unwrap_or_else(|e| die("baseline-udp", e));
    announce(&name).unwrap_or_else(|e| die("baseline-udp: stdout", e));
    let mut buf = [0u8; MAX_PACKET];
    loop {
        match socket.recv_from(&mut buf) {
            Ok((n, peer)) => {
                // A client that went away is not our problem: keep serving.
                let _ = socket.send_to(&buf[..n], peer);
            }
            Err(e) => eprintln!("baseline-udp: recv: {e}"),
        }
    }
}
