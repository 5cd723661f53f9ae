//! A connection as a multiplexed handler sees it during one step: every
//! byte counted, and no more readiness once the step's budget is spent.
//!
//! This is how `Multiplexed` keeps its promises without trusting the
//! handler: a handler that loops "while ready" stops when the budget runs
//! out, so one busy connection cannot delay the others or a new client by
//! more than one pass, and the bytes counted feed the idle policy's trickle
//! defence.

use embedded_io::{ErrorType, Read, ReadReady, Write, WriteReady};

use crate::time::Duration;
use crate::transport::Connection;

/// Bytes one slot may move (read plus written) in one pass.
pub const STEP_BUDGET: usize = 64 * 1024;

/// A borrowed connection with a byte budget for one step.
#[derive(Debug)]
pub struct Metered<'c, C> {
    inner: &'c mut C,
    moved: usize,
    budget: usize,
}

impl<'c, C: Connection> Metered<'c, C> {
    /// A step over `inner` that may move `budget` bytes.
    pub fn new(inner: &'c mut C, budget: usize) -> Self {
        Self {
            inner,
            moved: 0,
            budget,
        }
    }

    /// Bytes moved so far in this step.
    pub fn moved(&self) -> usize {
        self.moved
    }

    /// Whether the step's budget is spent.
    pub fn is_spent(&self) -> bool {
        self.moved >= self.budget
    }

    /// What is left of the budget: reads and writes are cut to it.
    fn left(&self) -> usize {
        self.budget.saturating_sub(self.moved)
    }

    /// The connection itself.
    pub fn inner(&self) -> &C {
        self.inner
    }

    /// The connection itself, mutably; bytes moved through it are not counted.
    pub fn inner_mut(&mut self) -> &mut C {
        self.inner
    }
}

impl<C: Connection> ErrorType for Metered<'_, C> {
    type Error = C::Error;
}

impl<C: Connection> Read for Metered<'_, C> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        // A spent budget still reads one byte: a read must not return 0
        // (EOF) for a non-empty buffer, and the handler asked readiness first.
        let want = buf.len().min(self.left().max(1));
        let n = self.inner.read(&mut buf[..want])?;
        self.moved += n;
        Ok(n)
    }
}

impl<C: Connection> Write for Metered<'_, C> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        let want = buf.len().min(self.left().max(1));
        let n = self.inner.write(&buf[..want])?;
        self.moved += n;
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush()
    }
}

impl<C: Connection> ReadReady for Metered<'_, C> {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        if self.is_spent() {
            return Ok(false);
        }
        self.inner.read_ready()
    }
}

impl<C: Connection> WriteReady for Metered<'_, C> {
    fn write_ready(&mut self) -> Result<bool, Self::Error> {
        if self.is_spent() {
            return Ok(false);
        }
        self.inner.write_ready()
    }
}

impl<C: Connection> Connection for Metered<'_, C> {
    type Addr = C::Addr;

    fn shutdown_write(&mut self) -> Result<(), Self::Error> {
        self.inner.shutdown_write()
    }

    /// Does nothing: the strategy closes the connection it owns.
    fn close(self) {}

    fn set_timeout(&mut self, timeout: Option<Duration>) -> Result<(), Self::Error> {
        self.inner.set_timeout(timeout)
    }

    fn set_nodelay(&mut self, nodelay: bool) -> Result<(), Self::Error> {
        self.inner.set_nodelay(nodelay)
    }
}
