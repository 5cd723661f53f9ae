//! Per-connection TCP settings, with deliberate defaults.

use core::time::Duration;

use smoltcp::socket::tcp;

/// How each pool socket behaves. The defaults are chosen for request/response
/// services on a small stack, not copied from smoltcp:
///
/// | setting | default | why |
/// |---|---|---|
/// | `ack_delay` | `None` | smoltcp's 10 ms delayed ACK stalls every request/response turn; ACKing at once costs a few more small frames |
/// | `nagle` | `false` | Nagle plus the peer's delayed ACK holds small replies for up to 40-200 ms |
/// | `keep_alive` | 15 s | probes an idle peer so a crashed one is detected |
/// | `timeout` | 45 s | three missed keep-alives (or unacknowledged data this long) abort the connection |
/// | `idle_timeout` | 60 s | an accepted connection that moves no byte this long is aborted (RST), whatever the strategy: a silent but alive peer cannot hold a socket forever |
/// | `fin_timeout` | 10 s | a closed connection whose peer never sends its FIN (FIN-WAIT-2) is aborted, so it cannot keep a pool socket from listening; Linux's `tcp_fin_timeout` is 60 s, a pool socket is scarcer (1 s while clients wait in the SYN backlog) |
/// | `syn_timeout` | 3 s | a handshake the peer never completes (a spoofed or vanished address) gives its socket back; a real handshake takes one round trip, and 3 s covers two SYN retransmissions (2 s while clients wait in the SYN backlog) |
/// | `evict_after` | 500 ms | at capacity, a client waiting in the SYN backlog takes the place of the longest-idle connection, if it moved no byte this long: silent or trickling peers cannot keep newcomers out |
/// | `loss_recovery` | on | smoltcp alone waits at least 1 s for each segment lost while the peer also sends (its duplicate ACKs carry data): 0.1 MB/s through 5% loss; reading the peer's SACK blocks resends within a round trip |
///
/// Buffer sizes are the storage you give the pool ([`TcpStorage`](crate::TcpStorage)):
/// 2-4 KiB per direction suits firmware; 64 KiB or more gives desktop-class
/// throughput over TAP (window scaling starts above 64 KiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TcpConfig {
    /// smoltcp's delayed ACK (`set_ack_delay`).
    pub ack_delay: Option<Duration>,
    /// Nagle's algorithm (`set_nagle_enabled`).
    pub nagle: bool,
    /// Keep-alive interval (`set_keep_alive`).
    pub keep_alive: Option<Duration>,
    /// smoltcp's connection timeout (`set_timeout`). With `None`, a peer
    /// that vanishes while data or a FIN is unacknowledged holds its pool
    /// socket in FIN-WAIT-1, CLOSING or LAST-ACK forever (`fin_timeout` only
    /// covers FIN-WAIT-2).
    pub timeout: Option<Duration>,
    /// How long an accepted connection may move no byte (nothing read,
    /// nothing written) before the stack aborts it with RST; also the bound
    /// on each blocking read or write, whatever the handler's own timeout
    /// says (`None`: the handler decides alone). The handler's pending read
    /// or write then fails, and the peer sees a reset, not a clean end.
    pub idle_timeout: Option<Duration>,
    /// How long a released socket may wait in FIN-WAIT-2 for the peer's FIN
    /// before it is aborted and listens again (`None`: forever). While
    /// connection requests for its port wait in the SYN backlog, the wait is
    /// cut to [`FIN_WAIT_UNDER_PRESSURE`](crate::FIN_WAIT_UNDER_PRESSURE)
    /// (1 s), so a peer that never closes cannot keep waiting clients out.
    pub fin_timeout: Option<Duration>,
    /// How long a pool socket may stay half-open (SYN-RECEIVED) before it
    /// listens again, silently (`None`: until smoltcp's `timeout`). While
    /// connection requests for its port wait in the SYN backlog, the wait is
    /// cut to [`SYN_RECEIVED_UNDER_PRESSURE`](crate::SYN_RECEIVED_UNDER_PRESSURE)
    /// (2 s): forged SYNs from addresses that never answer cannot hold the
    /// pool.
    pub syn_timeout: Option<Duration>,
    /// How long an accepted connection must have moved no byte before a
    /// client waiting for the port (a SYN held in the backlog, or a
    /// connection with data that the server has not accepted for
    /// [`PENDING_PRESSURE`](crate::PENDING_PRESSURE)) may take its place: the
    /// longest-idle such connection is aborted (RST) to free its socket
    /// (`None`: never evict). Half-open sockets are never evicted, so forged
    /// SYNs wait in the backlog instead of evicting each other.
    pub evict_after: Option<Duration>,
    /// Resend a lost segment within a round trip instead of after
    /// smoltcp's retransmission timeout (at least 1 s, doubling, then the
    /// whole window again). smoltcp resends early only on three duplicate
    /// ACKs without data, which a peer that sends while it receives never
    /// produces; with this on, the stack reads the loss from the peer's SACK
    /// blocks (or from ACKs that stop progressing for twice the round trip,
    /// at least 5 ms) and has smoltcp fast-retransmit the segment; a FIN
    /// waits for the data before it to be acknowledged on a connection
    /// that lost segments (smoltcp counts no duplicate ACK once the FIN is
    /// out, in LAST-ACK). Costs a parse and a checksum check of each TCP
    /// frame of a pool connection, and about 130 bytes per tracked
    /// connection (16 with `std`, 4 without; the least recently active
    /// gives way). Takes effect for the whole stack, set through
    /// [`Stack::with_tcp_config`](crate::Stack::with_tcp_config). Needs the
    /// `loss-recovery` feature (on with `std`); without it this does nothing.
    pub loss_recovery: bool,
}

impl Default for TcpConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TcpConfig {
    /// The documented defaults, usable in `const` context.
    pub const DEFAULT: Self = Self {
        ack_delay: None,
        nagle: false,
        keep_alive: Some(Duration::from_secs(15)),
        timeout: Some(Duration::from_secs(45)),
        idle_timeout: Some(Duration::from_secs(60)),
        fin_timeout: Some(Duration::from_secs(10)),
        syn_timeout: Some(Duration::from_secs(3)),
        evict_after: Some(Duration::from_millis(500)),
        loss_recovery: true,
    };

    pub(crate) fn apply(&self, socket: &mut tcp::Socket<'_>) {
        socket.set_ack_delay(self.ack_delay.map(to_smol));
        socket.set_nagle_enabled(self.nagle);
        socket.set_keep_alive(self.keep_alive.map(to_smol));
        socket.set_timeout(self.timeout.map(to_smol));
    }
}

pub(crate) fn to_smol(d: Duration) -> smoltcp::time::Duration {
    smoltcp::time::Duration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

pub(crate) fn from_smol(d: smoltcp::time::Duration) -> Duration {
    Duration::from_micros(d.total_micros())
}
