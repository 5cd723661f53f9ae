//! How a forked child asks its parent's `serve_forever` to stop.
//!
//! A child's copy of the server's shutdown flag is private: setting it stops
//! nothing. So the `Forking` strategy creates a socket pair before its first
//! fork; a child's [`ShutdownHandle`](crate::ShutdownHandle) sends a byte
//! on it and wakes the parent's wait (the wake-up descriptor is inherited),
//! and the parent, after each wait, turns any byte it finds into a request
//! of its own flag. A socket, not a signal: the application owns the
//! process's signals.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;

/// The end a child sends on, recorded in its private copy of the server's
/// shutdown state by [`LoopWaker::enter_forked_child`](crate::LoopWaker).
#[derive(Debug, Clone)]
pub(crate) struct StopSender(Arc<UnixDatagram>);

impl StopSender {
    /// Queues a stop request for the parent: one non-blocking send(2), no
    /// allocation, no lock (a child of a multi-threaded process may hold
    /// none). Returns whether a request is queued, also when the queue was
    /// already full of earlier ones.
    pub(crate) fn send(&self) -> bool {
        match self.0.send(&[1]) {
            Ok(_) => true,
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        }
    }
}

/// Both ends, held by the `Forking` strategy in the parent.
#[derive(Debug)]
pub(crate) struct StopChannel {
    sender: StopSender,
    receiver: UnixDatagram,
}

impl StopChannel {
    /// A connected pair, non-blocking on both ends, close-on-exec (std
    /// creates sockets with `SOCK_CLOEXEC`): a program a handler runs
    /// cannot reach it.
    pub(crate) fn new() -> io::Result<Self> {
        let (sender, receiver) = UnixDatagram::pair()?;
        sender.set_nonblocking(true)?;
        receiver.set_nonblocking(true)?;
        Ok(Self {
            sender: StopSender(Arc::new(sender)),
            receiver,
        })
    }

    /// The end to hand to a child.
    pub(crate) fn sender(&self) -> StopSender {
        self.sender.clone()
    }

    /// Whether a child asked to stop since the last call; consumes every
    /// request queued, so one stop is seen once.
    pub(crate) fn take_requests(&self) -> bool {
        let mut buf = [0u8; 64];
        let mut asked = false;
        loop {
            match self.receiver.recv(&mut buf) {
                Ok(_) => asked = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return asked,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_seen_once_and_a_full_queue_still_counts_as_sent() {
        let channel = StopChannel::new().unwrap();
        assert!(!channel.take_requests());
        let sender = channel.sender();
        // More than the socket queues: the later sends find it full.
        for _ in 0..10_000 {
            assert!(sender.send());
        }
        assert!(channel.take_requests());
        assert!(!channel.take_requests());
    }
}
