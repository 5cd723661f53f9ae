//! UDP: core's [`DatagramSocket`] over a smoltcp socket, and its storage.

use core::time::Duration;

use embedded_io::ErrorType;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};
use socketserver_core::time::Instant;
use socketserver_core::{DatagramSocket, Received, Sent};

use crate::error::Error;
use crate::handle::NetRef;

/// How long the head of the send queue may stay unsent, with more datagrams
/// behind it, before the queue is dropped. A reply to an address that never
/// answers neighbor discovery (a spoofed or vanished sender on the local
/// subnet) stays at the head of smoltcp's queue and would hold back every
/// later reply; neighbors that exist answer within milliseconds, and smoltcp
/// asks again once a second.
pub const STUCK_SEND_QUEUE: Duration = Duration::from_secs(3);

/// Datagram metadata for one UDP socket: `P` datagrams per direction.
///
/// Not all zero (smoltcp's empty entry is not), so a `static` of it costs
/// flash as well as RAM; firmware that minds keeps it in a `MaybeUninit`
/// static written at boot, and the bytes in a [`UdpBytes`] static (.bss).
#[derive(Debug)]
pub struct UdpMeta<const P: usize> {
    rx: [udp::PacketMetadata; P],
    tx: [udp::PacketMetadata; P],
}

impl<const P: usize> Default for UdpMeta<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const P: usize> UdpMeta<P> {
    /// Empty metadata, usable in a `static`.
    pub const fn new() -> Self {
        Self {
            rx: [udp::PacketMetadata::EMPTY; P],
            tx: [udp::PacketMetadata::EMPTY; P],
        }
    }
}

/// Datagram bytes for one UDP socket: `BYTES` per direction. All zero, so a
/// `static` of it lives in .bss (RAM only).
#[derive(Debug)]
pub struct UdpBytes<const BYTES: usize> {
    rx: [u8; BYTES],
    tx: [u8; BYTES],
}

impl<const BYTES: usize> Default for UdpBytes<BYTES> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const BYTES: usize> UdpBytes<BYTES> {
    /// Zeroed bytes, usable in a `static`.
    pub const fn new() -> Self {
        Self {
            rx: [0; BYTES],
            tx: [0; BYTES],
        }
    }

    /// A socket over these bytes and `meta`, for [`StackUdpSocket::bind`].
    ///
    /// ```
    /// use socketserver_smoltcp::{UdpBytes, UdpMeta};
    /// let mut meta = UdpMeta::<8>::new();
    /// let mut bytes = UdpBytes::<8192>::new();
    /// let _socket = bytes.socket(&mut meta);
    /// ```
    pub fn socket<'b, const P: usize>(&'b mut self, meta: &'b mut UdpMeta<P>) -> udp::Socket<'b> {
        udp::Socket::new(
            udp::PacketBuffer::new(&mut meta.rx[..], &mut self.rx[..]),
            udp::PacketBuffer::new(&mut meta.tx[..], &mut self.tx[..]),
        )
    }
}

/// Buffer storage for one UDP socket: `P` datagrams of at most `BYTES` bytes
/// in all, per direction ([`UdpMeta`] and [`UdpBytes`] in one value).
///
/// smoltcp drops a received datagram that does not fit the receive buffer
/// (it does not truncate it, as a kernel socket would): to serve Python's
/// default `max_packet_size` of 8192, make `BYTES` at least 8192.
///
/// ```
/// use socketserver_smoltcp::UdpStorage;
/// let mut storage = UdpStorage::<8, 16384>::new();
/// let _socket = storage.socket();
/// ```
#[derive(Debug)]
pub struct UdpStorage<const P: usize, const BYTES: usize> {
    meta: UdpMeta<P>,
    bytes: UdpBytes<BYTES>,
}

impl<const P: usize, const BYTES: usize> Default for UdpStorage<P, BYTES> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const P: usize, const BYTES: usize> UdpStorage<P, BYTES> {
    /// Empty storage, usable in a `static`.
    pub const fn new() -> Self {
        Self {
            meta: UdpMeta::new(),
            bytes: UdpBytes::new(),
        }
    }

    /// A socket over this storage, for [`StackUdpSocket::bind`].
    pub fn socket(&mut self) -> udp::Socket<'_> {
        self.bytes.socket(&mut self.meta)
    }
}

/// A bound UDP socket on the stack: core's [`DatagramSocket`].
///
/// Sending never blocks: a datagram a full send buffer cannot take is
/// dropped, and `send_to` says so with `Sent::Dropped` (see
/// [`DatagramSocket::send_to`] below). Closing or dropping it removes
/// the socket from the stack, so the port may be bound again.
#[derive(Debug)]
pub struct StackUdpSocket<'s, 'a> {
    net: NetRef<'s, 'a>,
    handle: SocketHandle,
    local: IpListenEndpoint,
    /// Datagrams queued after our last send, and since when none has left.
    queued: Option<(usize, Instant)>,
    /// Payload bytes dropped with a stuck send queue.
    dropped: u64,
}

fn bind_error(e: udp::BindError) -> Error {
    match e {
        udp::BindError::Unaddressable => Error::Unaddressable,
        _ => Error::InvalidState,
    }
}

impl<'s, 'a> StackUdpSocket<'s, 'a> {
    /// Adds `socket` to the stack of `net` (a [`NetRef`], or `&stack`),
    /// bound to `local` (a port, or an address and port). Port 0 takes a
    /// free port of the dynamic range, 49152 to 65535
    /// ([`StackUdpSocket::local_endpoint`] says which), as a kernel does.
    pub fn bind(
        net: impl Into<NetRef<'s, 'a>>,
        local: impl Into<IpListenEndpoint>,
        mut socket: udp::Socket<'a>,
    ) -> Result<Self, Error> {
        let net = net.into();
        let mut local = local.into();
        let handle = net.with(|stack| {
            if local.port == 0 {
                local.port = stack.free_port()?;
            }
            socket.bind(local).map_err(bind_error)?;
            stack.add_udp(socket)
        })??;
        Ok(Self {
            net,
            handle,
            local,
            queued: None,
            dropped: 0,
        })
    }

    /// The local endpoint (with the chosen port, after a bind to port 0).
    pub fn local_endpoint(&self) -> IpListenEndpoint {
        self.local
    }

    /// Whether a datagram waits to be received (`false` while the stack is
    /// borrowed elsewhere).
    pub fn is_ready(&self) -> bool {
        self.net
            .with(|net| net.udp(self.handle).can_recv())
            .unwrap_or(false)
    }

    /// Payload bytes dropped so far because the send queue was stuck for
    /// [`STUCK_SEND_QUEUE`]: those queued to send and those received but not
    /// yet read (smoltcp resets both queues together).
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped
    }

    /// Removes the socket from the stack; dropping it does the same.
    pub fn close(self) {
        // Drop removes the socket.
        drop(self);
    }

    /// Notes whether the send queue moved since our last send; drops it
    /// when its head has been stuck for [`STUCK_SEND_QUEUE`].
    fn unstick(&mut self, socket: &mut udp::Socket<'_>, now: Instant) -> Result<(), Error> {
        let queued = socket.send_queue();
        self.queued = match self.queued {
            _ if queued == 0 => None,
            // Only this socket enqueues, so a shorter queue (in bytes) means a
            // datagram left.
            Some((last, since)) if queued >= last => Some((queued, since)),
            _ => Some((queued, now)),
        };
        let Some((_, since)) = self.queued else {
            return Ok(());
        };
        if now < since.saturating_add(STUCK_SEND_QUEUE) {
            return Ok(());
        }
        // smoltcp cannot drop one queued datagram: close the socket (which
        // empties both queues) and bind it again.
        let lost = queued.saturating_add(socket.recv_queue());
        self.dropped = self
            .dropped
            .saturating_add(u64::try_from(lost).unwrap_or(u64::MAX));
        socket.close();
        self.queued = None;
        socket.bind(self.local).map_err(bind_error)
    }
}

impl Drop for StackUdpSocket<'_, '_> {
    fn drop(&mut self) {
        let handle = self.handle;
        // Borrowed across the drop only by a caller that holds the stack
        // while dropping the socket: then it stays, rather than a panic.
        let _ = self.net.with(|net| net.remove_socket(handle));
    }
}

impl ErrorType for StackUdpSocket<'_, '_> {
    type Error = Error;
}

impl DatagramSocket for StackUdpSocket<'_, '_> {
    type Addr = IpEndpoint;

    /// Takes one waiting datagram. smoltcp has already dropped any datagram
    /// larger than the socket's receive buffer; one larger than `buf` is
    /// truncated, as Python's `recvfrom` does.
    fn recv_from(&mut self, buf: &mut [u8]) -> Result<Option<Received<IpEndpoint>>, Error> {
        self.net.with(|net| {
            let (data, meta) = net.udp(self.handle).recv().ok()?;
            let len = data.len().min(buf.len());
            buf[..len].copy_from_slice(&data[..len]);
            Some(Received {
                len,
                addr: meta.endpoint,
                truncated: len < data.len(),
            })
        })
    }

    /// Queues the datagram and polls the stack to send it. Never blocks:
    /// when the send buffer is full even after a poll, the datagram is not
    /// sent and [`Sent::Dropped`] says so (UDP may drop it; a kernel
    /// socket's `ENOBUFS`). A queue whose head has not left for
    /// [`STUCK_SEND_QUEUE`] is dropped first (see [`StackUdpSocket::dropped_bytes`]).
    /// Its endpoint, an unbound address as `0.0.0.0` (Python's `('', port)`).
    fn local_addr(&self) -> IpEndpoint {
        crate::tcp::server_endpoint(self.local)
    }

    fn send_to(&mut self, buf: &[u8], addr: &IpEndpoint) -> Result<Sent, Error> {
        for attempt in 0..2 {
            let net = self.net;
            let result = net.with(|net| {
                let now = net.now();
                let socket = net.udp(self.handle);
                if buf.len() > socket.payload_send_capacity() {
                    return Err(Error::TooLarge);
                }
                self.unstick(socket, now)?;
                let result = socket.send_slice(buf, *addr);
                if result.is_ok() {
                    let queued = socket.send_queue();
                    let since = self.queued.map_or(now, |(_, since)| since);
                    self.queued = Some((queued, since));
                }
                Ok(result)
            })??;
            match result {
                Ok(()) => {
                    net.poll()?;
                    return Ok(Sent::Queued);
                }
                Err(udp::SendError::Unaddressable) => return Err(Error::Unaddressable),
                Err(udp::SendError::BufferFull) if attempt == 0 => {
                    // The device may take what is queued: one poll, one retry.
                    net.poll()?;
                }
                Err(udp::SendError::BufferFull) => {}
            }
        }
        Ok(Sent::Dropped)
    }
}
