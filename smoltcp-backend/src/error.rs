//! The backend's one error type, mapped to `embedded_io::ErrorKind` here only.

use core::fmt;

/// Why a socket operation of this backend failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The connection is gone: the peer reset it, or smoltcp's timeout or
    /// keep-alive gave up on it.
    ConnectionReset,
    /// The local side already closed the sending half.
    NotConnected,
    /// A blocking read or write passed its deadline.
    TimedOut,
    /// The socket set's storage is full; give [`Stack::new`](crate::Stack::new) more slots.
    SocketSetFull,
    /// The stack manages [`MAX_POOL_SOCKETS`](crate::MAX_POOL_SOCKETS) pool sockets already.
    PoolFull,
    /// The address cannot be used: no route to the destination.
    Unaddressable,
    /// A datagram does not fit the socket's send buffer even when empty.
    TooLarge,
    /// The socket is not in a state that allows the operation.
    InvalidState,
    /// The stack is borrowed elsewhere: your code holds a borrow of its
    /// `RefCell` across a call into a listener, socket, connection or server.
    StackBusy,
    /// A bind to port 0 found every port of the dynamic range (49152 to
    /// 65535) in use.
    AddrInUse,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::ConnectionReset => "connection reset or timed out by the stack",
            Error::NotConnected => "sending half already closed",
            Error::TimedOut => "timed out",
            Error::SocketSetFull => "socket set storage is full",
            Error::PoolFull => "too many pool sockets for one stack",
            Error::Unaddressable => "address unusable",
            Error::TooLarge => "datagram larger than the send buffer",
            Error::InvalidState => "socket in the wrong state",
            Error::StackBusy => "stack borrowed elsewhere",
            Error::AddrInUse => "no free port in the dynamic range",
        })
    }
}

impl core::error::Error for Error {}

impl embedded_io::Error for Error {
    fn kind(&self) -> embedded_io::ErrorKind {
        use embedded_io::ErrorKind;
        match self {
            Error::ConnectionReset => ErrorKind::ConnectionReset,
            Error::NotConnected => ErrorKind::NotConnected,
            Error::TimedOut => ErrorKind::TimedOut,
            Error::SocketSetFull | Error::PoolFull => ErrorKind::OutOfMemory,
            Error::Unaddressable => ErrorKind::AddrNotAvailable,
            Error::TooLarge => ErrorKind::InvalidInput,
            Error::InvalidState | Error::StackBusy => ErrorKind::Other,
            Error::AddrInUse => ErrorKind::AddrInUse,
        }
    }
}
