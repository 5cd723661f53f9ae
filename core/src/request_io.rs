//! The I/O under an async request: blocking (each call waits in the
//! transport, so every await completes at once) or polled (a multiplexed
//! server's request: a call that would block registers the slot's waker with
//! the connection and yields).
//!
//! Polled I/O also keeps the multiplexed server's promises without trusting
//! the handler: after [`STEP_BUDGET`] bytes in one poll it yields, so one busy
//! connection cannot hold the serving thread; and when the server ends the
//! request (a shutdown deadline, an idle peer, an eviction) every call fails
//! with [`Error::Cut`], so the handler returns and `finish` runs.

use core::future::poll_fn;
use core::task::{Context, Poll};

use embedded_io::ErrorType;

use crate::error::Error;
use crate::transport::{Connection, Interest};
use crate::wake::SlotOf;

/// Bytes one request may move (read plus written) in one poll before it
/// yields to the others.
pub const STEP_BUDGET: usize = 64 * 1024;

/// How a request's calls wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// In the transport (a thread, a child, `Sequential`).
    Blocking,
    /// By yielding to a multiplexed server until the connection is ready.
    Polled,
}

/// A request's connection and how its calls wait.
#[derive(Debug)]
pub(crate) struct RequestIo<'r, C> {
    pub(crate) conn: &'r mut C,
    mode: Mode,
    /// Bytes moved since this request last yielded.
    since_yield: usize,
}

impl<'r, C: Connection> RequestIo<'r, C> {
    pub(crate) fn new(conn: &'r mut C, mode: Mode) -> Self {
        Self {
            conn,
            mode,
            since_yield: 0,
        }
    }

    /// One polled call: `op` tries without blocking; `None` means "not ready".
    fn poll_op(
        &mut self,
        cx: &mut Context<'_>,
        interest: Interest,
        op: impl FnOnce(&mut C) -> Result<Option<usize>, C::Error>,
    ) -> Poll<Result<usize, Error<C::Error>>> {
        let slot = SlotOf::of(cx.waker());
        if let Some(slot) = slot.filter(|s| s.is_cancelled()) {
            // Ended by the server: by its handler's own timeout, or cut.
            let error = if slot.is_timed_out() {
                Error::TimedOut
            } else {
                Error::Cut
            };
            return Poll::Ready(Err(error));
        }
        if self.since_yield >= STEP_BUDGET {
            // This poll's share is spent: let the other requests run.
            self.since_yield = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match op(self.conn) {
            Ok(Some(n)) => {
                self.since_yield += n;
                if let Some(slot) = slot {
                    slot.moved(n);
                }
                Poll::Ready(Ok(n))
            }
            Ok(None) => {
                self.since_yield = 0;
                self.conn.register_waker(interest, cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(Error::Io(e))),
        }
    }
}

impl<C: Connection> ErrorType for RequestIo<'_, C> {
    type Error = Error<C::Error>;
}

impl<C: Connection> embedded_io_async::Read for RequestIo<'_, C> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        match self.mode {
            Mode::Blocking => Ok(self.conn.read(buf)?),
            Mode::Polled => {
                poll_fn(|cx| self.poll_op(cx, Interest::Read, |c| c.try_read(buf))).await
            }
        }
    }
}

impl<C: Connection> embedded_io_async::Write for RequestIo<'_, C> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        match self.mode {
            Mode::Blocking => Ok(self.conn.write(buf)?),
            Mode::Polled => {
                poll_fn(|cx| self.poll_op(cx, Interest::Write, |c| c.try_write(buf))).await
            }
        }
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(self.conn.flush()?)
    }
}

/// An error of the buffered I/O over [`RequestIo`], whose own errors are
/// already core errors, made flat again.
pub(crate) fn flatten<E>(e: Error<Error<E>>) -> Error<E> {
    e.map_io(|inner| inner)
}
