//! Typed errors of request handling.

use core::fmt;

use crate::message::Message;

/// Why a request failed.
///
/// `E` is the transport's own error (a `std::io::Error` on std, a smoltcp
/// socket error on smoltcp). Every variant maps to an [`embedded_io::ErrorKind`]
/// in [`embedded_io::Error::kind`], so generic code can branch on the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error<E> {
    /// The transport failed: a reset, a timeout, a closed socket.
    Io(E),
    /// `read_line` found no newline within its maximum; the bytes it copied were consumed.
    LineTooLong,
    /// The peer closed the stream before `read_exact` had all its bytes.
    UnexpectedEof,
    /// The transport accepted no byte of a non-empty write.
    WriteZero,
    /// A fixed-capacity buffer (a datagram reply) cannot take more bytes.
    BufferFull,
    /// A deadline passed while waiting for the peer.
    TimedOut,
    /// The handler gave up for a reason of its own.
    Handler(&'static str),
    /// The handler gave up for a reason of its own, formatted: see [`Error::msg`].
    Message(Message),
    /// The peer moved less than the server's minimum rate (the trickle defence).
    TooSlow,
    /// The server ended the request: to make room for a waiting client, or
    /// because a graceful shutdown's deadline passed. The peer saw a reset.
    Cut,
}

/// An error of handler code that does no transport I/O (datagram handlers).
pub type HandlerError = Error<core::convert::Infallible>;

impl<E> Error<E> {
    /// A handler's own error with a formatted message, no heap:
    /// `Err(Error::msg(format_args!("unknown command {cmd:?}")))`.
    pub fn msg(args: core::fmt::Arguments<'_>) -> Self {
        Error::Message(Message::new(args))
    }

    /// Converts an error that cannot hold a transport error into any `Error<E>`.
    pub fn widen(err: HandlerError) -> Self {
        err.map_io(|never| match never {})
    }

    /// Replaces the transport error by what `f` makes of it; every other
    /// variant stays as it is.
    pub fn map_io<F>(self, f: impl FnOnce(E) -> Error<F>) -> Error<F> {
        match self {
            Error::Io(e) => f(e),
            Error::LineTooLong => Error::LineTooLong,
            Error::UnexpectedEof => Error::UnexpectedEof,
            Error::WriteZero => Error::WriteZero,
            Error::BufferFull => Error::BufferFull,
            Error::TimedOut => Error::TimedOut,
            Error::Handler(why) => Error::Handler(why),
            Error::Message(message) => Error::Message(message),
            Error::TooSlow => Error::TooSlow,
            Error::Cut => Error::Cut,
        }
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "transport error: {e}"),
            Error::LineTooLong => f.write_str("line longer than the reader's maximum"),
            Error::UnexpectedEof => f.write_str("peer closed the stream early"),
            Error::WriteZero => f.write_str("transport accepted no bytes"),
            Error::BufferFull => f.write_str("buffer full"),
            Error::TimedOut => f.write_str("timed out"),
            Error::Handler(why) => write!(f, "handler failed: {why}"),
            Error::Message(message) => write!(f, "handler failed: {message}"),
            Error::TooSlow => f.write_str("peer moved less than the minimum rate"),
            Error::Cut => f.write_str("request cut by the server"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for Error<E> {}

impl<E: embedded_io::Error> embedded_io::Error for Error<E> {
    fn kind(&self) -> embedded_io::ErrorKind {
        use embedded_io::ErrorKind;
        match self {
            Error::Io(e) => e.kind(),
            Error::LineTooLong => ErrorKind::InvalidData,
            Error::UnexpectedEof => ErrorKind::BrokenPipe,
            Error::WriteZero => ErrorKind::WriteZero,
            Error::BufferFull => ErrorKind::OutOfMemory,
            Error::TimedOut => ErrorKind::TimedOut,
            Error::Handler(_) | Error::Message(_) => ErrorKind::Other,
            Error::TooSlow => ErrorKind::TimedOut,
            Error::Cut => ErrorKind::ConnectionAborted,
        }
    }
}

impl<E> From<E> for Error<E> {
    fn from(e: E) -> Self {
        Error::Io(e)
    }
}
