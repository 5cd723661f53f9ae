//! UDP: core's [`DatagramSocket`] over a smoltcp socket.

use embedded_io::ErrorType;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};
use socketserver_core::{DatagramSocket, Received};

use crate::drive::drive;
use crate::error::Error;
use crate::stack::NetRef;

/// Buffer storage for one UDP socket: `P` datagrams of at most `BYTES` bytes
/// in all, per direction.
///
/// ```
/// use socketserver_smoltcp::UdpStorage;
/// let mut storage = UdpStorage::<8, 16384>::new();
/// let _socket = storage.socket();
/// ```
#[derive(Debug)]
pub struct UdpStorage<const P: usize, const BYTES: usize> {
    rx_meta: [udp::PacketMetadata; P],
    rx: [u8; BYTES],
    tx_meta: [udp::PacketMetadata; P],
    tx: [u8; BYTES],
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
            rx_meta: [udp::PacketMetadata::EMPTY; P],
            rx: [0; BYTES],
            tx_meta: [udp::PacketMetadata::EMPTY; P],
            tx: [0; BYTES],
        }
    }

    /// A socket over this storage, for [`UdpSocket::bind`].
    pub fn socket(&mut self) -> udp::Socket<'_> {
        udp::Socket::new(
            udp::PacketBuffer::new(&mut self.rx_meta[..], &mut self.rx[..]),
            udp::PacketBuffer::new(&mut self.tx_meta[..], &mut self.tx[..]),
        )
    }
}

/// A bound UDP socket on the stack: core's [`DatagramSocket`].
pub struct UdpSocket<'s, 'a> {
    net: NetRef<'s, 'a>,
    handle: SocketHandle,
    local: IpListenEndpoint,
}

impl core::fmt::Debug for UdpSocket<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local", &self.local)
            .finish()
    }
}

impl<'s, 'a> UdpSocket<'s, 'a> {
    /// Adds `socket` to the stack, bound to `local` (a port, or an address and port).
    pub fn bind(
        net: NetRef<'s, 'a>,
        local: impl Into<IpListenEndpoint>,
        mut socket: udp::Socket<'a>,
    ) -> Result<Self, Error> {
        let local = local.into();
        socket.bind(local).map_err(|e| match e {
            udp::BindError::Unaddressable => Error::Unaddressable,
            _ => Error::InvalidState,
        })?;
        let handle = net.borrow_mut().add_udp(socket)?;
        Ok(Self { net, handle, local })
    }

    /// The local endpoint.
    pub fn local_endpoint(&self) -> IpListenEndpoint {
        self.local
    }

    /// Whether a datagram waits to be received.
    pub fn is_ready(&self) -> bool {
        self.net.borrow_mut().udp(self.handle).can_recv()
    }
}

impl ErrorType for UdpSocket<'_, '_> {
    type Error = Error;
}

impl DatagramSocket for UdpSocket<'_, '_> {
    type Addr = IpEndpoint;

    fn recv_from(&mut self, buf: &mut [u8]) -> Result<Option<Received<IpEndpoint>>, Error> {
        let mut net = self.net.borrow_mut();
        let Ok((data, meta)) = net.udp(self.handle).recv() else {
            return Ok(None);
        };
        let len = data.len().min(buf.len());
        buf[..len].copy_from_slice(&data[..len]);
        Ok(Some(Received {
            len,
            addr: meta.endpoint,
            truncated: len < data.len(),
        }))
    }

    /// Queues the datagram; when the send buffer is full, drives the stack
    /// until it drains or the stack's idle timeout passes.
    fn send_to(&mut self, buf: &[u8], addr: &IpEndpoint) -> Result<(), Error> {
        let deadline = {
            let net = self.net.borrow();
            net.tcp_config()
                .idle_timeout
                .map(|t| net.now().saturating_add(t))
        };
        loop {
            let result = {
                let mut net = self.net.borrow_mut();
                let socket = net.udp(self.handle);
                if buf.len() > socket.payload_send_capacity() {
                    return Err(Error::TooLarge);
                }
                socket.send_slice(buf, *addr)
            };
            match result {
                Ok(()) => {
                    self.net.borrow_mut().poll();
                    return Ok(());
                }
                Err(udp::SendError::Unaddressable) => return Err(Error::Unaddressable),
                Err(udp::SendError::BufferFull) => {}
            }
            let expired = {
                let net = self.net.borrow();
                net.is_cancelled() || deadline.is_some_and(|d| net.now() >= d)
            };
            if expired {
                return Err(Error::TimedOut);
            }
            drive(self.net, deadline);
        }
    }
}
