//! The `Copy` handle through which listeners, connections, sockets and
//! waiters share one stack, and the one place that borrows it.

use core::cell::RefCell;
use core::time::Duration;

use socketserver_core::time::Instant;

use crate::error::Error;
use crate::net::Shared;

/// A shared stack: what [`StackTcpListener`](crate::StackTcpListener),
/// [`StackUdpSocket`](crate::StackUdpSocket), their connections and the
/// [`Waiter`](crate::Waiter) hold. `Copy`, and made from a
/// `&RefCell<Stack<..>>` (`NetRef::from(&stack)`, or pass `&stack` where an
/// `impl Into<NetRef>` is taken), so their types need not name the device,
/// clock or idle strategy.
///
/// Each operation borrows the stack for its own duration only. While your
/// code holds a borrow of it (`stack.borrow_mut()` kept across a call into a
/// server), operations fail with [`Error::StackBusy`] instead of panicking;
/// the error reaches the handler (a read or write) or ends `serve_forever`
/// (a wait), and the server's error hook reports it.
#[derive(Clone, Copy)]
pub struct NetRef<'s, 'a> {
    cell: &'s RefCell<dyn Shared<'a> + 's>,
}

impl core::fmt::Debug for NetRef<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NetRef")
            .field("busy", &self.cell.try_borrow_mut().is_err())
            .finish()
    }
}

impl<'s, 'a, N: Shared<'a> + 's> From<&'s RefCell<N>> for NetRef<'s, 'a> {
    fn from(cell: &'s RefCell<N>) -> Self {
        Self { cell }
    }
}

impl<'s, 'a> NetRef<'s, 'a> {
    /// [`Net::poll`](crate::Net::poll): processes inbound frames (a bounded number) and sends
    /// what sockets queued. Returns whether a socket may have changed.
    pub fn poll(self) -> Result<bool, Error> {
        self.with(|net| net.poll())
    }

    /// [`Net::poll_delay`](crate::Net::poll_delay): how long until the stack needs a poll at the
    /// latest (`None`: not until a frame arrives).
    pub fn poll_delay(self) -> Result<Option<Duration>, Error> {
        self.with(|net| net.poll_delay())
    }

    /// The current time of the stack's clock.
    pub fn now(self) -> Result<Instant, Error> {
        self.read(|net| net.now())
    }

    /// Runs `f` on the stack, borrowed mutably for the call.
    pub(crate) fn with<R>(
        self,
        f: impl FnOnce(&mut (dyn Shared<'a> + 's)) -> R,
    ) -> Result<R, Error> {
        let mut net = self.cell.try_borrow_mut().map_err(|_| Error::StackBusy)?;
        Ok(f(&mut *net))
    }

    /// Runs `f` on the stack, borrowed shared for the call.
    pub(crate) fn read<R>(self, f: impl FnOnce(&(dyn Shared<'a> + 's)) -> R) -> Result<R, Error> {
        let net = self.cell.try_borrow().map_err(|_| Error::StackBusy)?;
        Ok(f(&*net))
    }
}
