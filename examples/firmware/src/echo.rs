//! Phase-1 echo service on raw smoltcp sockets: TCP and UDP port 7.
//!
//! TCP: a pool of sockets all listening on port 7 (smoltcp has no backlog: one
//! socket is one connection), each re-armed after its connection ends. Each
//! service step moves what a socket received into its send buffer, as much as
//! fits, and never waits: a slow client only stalls its own socket.
//! UDP: each datagram goes back to its sender.

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Duration;

pub const PORT: u16 = 7;
/// A connection idle this long is aborted, so a vanished client frees its slot.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Copy buffer between a socket's receive and send buffers (and for UDP, one
/// datagram: it must hold the largest payload, 1500 - 20 - 8 bytes).
const CHUNK: usize = 1472;

pub struct Echo<const N: usize> {
    tcp: [SocketHandle; N],
    udp: SocketHandle,
    chunk: [u8; CHUNK],
    /// Connections accepted so far (for the log).
    pub accepted: u32,
    was_active: [bool; N],
}

impl<const N: usize> Echo<N> {
    pub fn new(tcp: [SocketHandle; N], udp: SocketHandle) -> Self {
        Echo {
            tcp,
            udp,
            chunk: [0; CHUNK],
            accepted: 0,
            was_active: [false; N],
        }
    }

    /// One non-blocking step over every socket.
    pub fn serve(&mut self, sockets: &mut SocketSet<'_>) {
        for (i, &handle) in self.tcp.iter().enumerate() {
            let socket = sockets.get_mut::<tcp::Socket>(handle);
            let active = socket.is_active();
            if active && !self.was_active[i] {
                self.accepted = self.accepted.wrapping_add(1);
                socket.set_timeout(Some(IDLE_TIMEOUT));
            }
            self.was_active[i] = active;
            serve_tcp(socket, &mut self.chunk);
        }
        serve_udp(sockets.get_mut::<udp::Socket>(self.udp), &mut self.chunk);
    }
}

fn serve_tcp(socket: &mut tcp::Socket<'_>, chunk: &mut [u8]) {
    if !socket.is_open() {
        // Closed or TIME-WAIT: take the next client. `listen` on a closed
        // socket with a nonzero port cannot fail.
        let _ = socket.listen(PORT);
        return;
    }
    while socket.can_recv() && socket.can_send() {
        let room = socket.send_capacity() - socket.send_queue();
        let want = room.min(chunk.len());
        let Ok(n) = socket.recv_slice(&mut chunk[..want]) else {
            break;
        };
        if n == 0 {
            break;
        }
        // `n <= room`, so the send buffer takes it all.
        let _ = socket.send_slice(&chunk[..n]);
    }
    // The client sent FIN and we echoed everything: close our side too.
    if !socket.may_recv() && socket.recv_queue() == 0 && socket.may_send() {
        socket.close();
    }
}

fn serve_udp(socket: &mut udp::Socket<'_>, chunk: &mut [u8]) {
    if !socket.is_open() {
        let _ = socket.bind(PORT);
    }
    // Check room first: a datagram taken off the queue without room to answer
    // would be lost.
    while socket.can_recv() && socket.can_send() {
        let Ok((n, meta)) = socket.recv_slice(chunk) else {
            break;
        };
        // Too big for the remaining payload space: dropped, as UDP allows.
        let _ = socket.send_slice(&chunk[..n], meta.endpoint);
    }
}
