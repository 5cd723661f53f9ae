//! The async I/O traits over blocking I/O: each call does its blocking
//! read or write and is ready at once. With [`block_on`](crate::block_on)
//! this lets one async implementation (the buffered reader, the request,
//! an async handler) serve blocking transports too.

use embedded_io::{ErrorType, Read, Write};

/// Blocking `embedded_io` I/O seen through `embedded_io_async`.
///
/// ```
/// use socketserver_core::{Blocking, block_on};
/// use socketserver_core::embedded_io_async::Read as _;
///
/// let mut input: &[u8] = b"hi";
/// let mut buf = [0u8; 2];
/// let n = block_on(Blocking(&mut input).read(&mut buf)).unwrap();
/// assert_eq!(&buf[..n], b"hi");
/// ```
#[derive(Debug)]
pub struct Blocking<T>(pub T);

impl<T: ErrorType> ErrorType for Blocking<T> {
    type Error = T::Error;
}

impl<T: Read> embedded_io_async::Read for Blocking<T> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.0.read(buf)
    }
}

impl<T: Write> embedded_io_async::Write for Blocking<T> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.write(buf)
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.0.flush()
    }
}
