//! `udp`: datagram round trips, one outstanding datagram per client.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::workers::{self, Outcome};

/// A reply later than this counts as lost (and is ignored if it comes).
const LOSS_TIMEOUT: Duration = Duration::from_millis(200);

/// Each of `clients` sockets sends a `size`-byte datagram carrying a
/// sequence number and waits for the same bytes back, until `duration` has
/// passed. Replies to earlier, timed-out datagrams are skipped.
pub fn run(server: SocketAddr, clients: usize, size: usize, duration: Duration) -> Outcome {
    let size = size.max(8); // room for the sequence number
    workers::run(clients, duration, move |_, deadline| {
        let mut outcome = Outcome::default();
        let bind: SocketAddr = if server.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = match UdpSocket::bind(bind)
            .and_then(|s| s.connect(server).map(|()| s))
            .and_then(|s| s.set_read_timeout(Some(LOSS_TIMEOUT)).map(|()| s))
        {
            Ok(s) => s,
            Err(e) => {
                outcome.error(format!("socket: {e}"));
                return outcome;
            }
        };
        let mut message = vec![0u8; size];
        let mut reply = vec![0u8; size + 1];
        let mut seq: u64 = 0;
        while !outcome.done(deadline) {
            seq += 1;
            message[..8].copy_from_slice(&seq.to_le_bytes());
            let t0 = Instant::now();
            if let Err(e) = socket.send(&message) {
                outcome.error(format!("send: {e}"));
                continue;
            }
            // Skip stale replies until ours arrives or the timeout passes.
            loop {
                match socket.recv(&mut reply) {
                    Ok(n) if n == size && reply[..n] == message[..] => {
                        outcome.latencies.record(t0.elapsed());
                        break;
                    }
                    Ok(_) if t0.elapsed() < LOSS_TIMEOUT => continue,
                    Ok(_) => {
                        outcome.lost += 1;
                        break;
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        outcome.lost += 1;
                        break;
                    }
                    Err(e) => {
                        outcome.error(format!("recv: {e}"));
                        break;
                    }
                }
            }
        }
        outcome
    })
}
