//! Several servers served from one thread with one shutdown: Python's
//! advice for it (`select()` on the servers, then `handle_request()` on the
//! one that is ready), as one call.

use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags};
use socketserver_core::{ServerHooks, StrategyFor};

use crate::server::kind::SocketKind;
use crate::server::socket_server::SocketServer;
use crate::sys::poll;
use crate::waiter::{Serving, ShutdownHandle, Waiter};

/// A server a [`ServerGroup`] serves: every std server (stream or
/// datagram, TCP or Unix, any strategy) is one.
pub trait GroupMember: AsFd {
    /// One pass that does not wait; whether anything moved (see
    /// [`SocketServer::serve_ready`]).
    fn serve_ready(&mut self) -> bool;
}

impl<T, P, K> GroupMember for SocketServer<T, P, K>
where
    T: SocketKind,
    K: ServerHooks<T::Addr>,
    P: StrategyFor<T::Source, K>,
{
    fn serve_ready(&mut self) -> bool {
        SocketServer::serve_ready(self)
    }
}

/// Serves several servers from the thread that calls
/// [`serve_forever`](Self::serve_forever), until its one
/// [`ShutdownHandle`] stops it: each server's requests are processed as its
/// own `serve_forever` would (its strategy, its hooks), and the thread
/// sleeps until one of them has something to do.
///
/// ```no_run
/// use std::time::Duration;
/// use socketserver_core::{Echo, EchoDatagram, Sequential};
/// use socketserver_std::{ServerGroup, TCPServer, ThreadingTCPServer, Threading, UDPServer};
///
/// # fn main() -> std::io::Result<()> {
/// let mut tcp = ThreadingTCPServer::bind("127.0.0.1:0", Echo::<1024>)?;
/// let mut udp = UDPServer::bind("127.0.0.1:0", EchoDatagram)?;
/// let mut group = ServerGroup::new()?;
/// let stop = group.shutdown_handle(); // stops the whole group, from any thread
/// # stop.request();
/// group.serve_forever(&mut [&mut tcp, &mut udp], Duration::from_millis(500))?;
/// tcp.server_close();
/// udp.server_close();
/// # Ok(()) }
/// ```
///
/// Each server's own shutdown handle does not stop the group (the group's
/// loop is not its `serve_forever`), nor does a handler's
/// `req.server().shutdown()` (from any strategy); a handler that must stop
/// the group holds the group's handle. Close the servers after the group
/// returns, as after `serve_forever`. A graceful stop of the group stops its loop as
/// `shutdown` does: drain and cut each server afterwards
/// ([`SocketServer::drain`], [`SocketServer::cut_in_flight`]).
/// Strategy deadlines (idle cuts, a handler's `timeout`) are met within
/// `poll_interval`.
#[derive(Debug)]
pub struct ServerGroup {
    /// Only its flag, wake-up socket and serving-thread record are used:
    /// what a [`ShutdownHandle`] needs to stop this loop and wait for it.
    waiter: Waiter,
}

impl ServerGroup {
    /// A group with its own shutdown handle.
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            waiter: Waiter::new()?,
        })
    }

    /// The handle that stops [`serve_forever`](Self::serve_forever), from
    /// any thread, as a server's does.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.waiter.shutdown_handle()
    }

    /// Serves `servers` until the group's shutdown handle stops it.
    /// `poll_interval` bounds a sleep with nothing to do, so each server's
    /// `service_actions` (reaping children, idle checks) runs at least that
    /// often.
    pub fn serve_forever(
        &mut self,
        servers: &mut [&mut dyn GroupMember],
        poll_interval: Duration,
    ) -> io::Result<()> {
        let _serving = Serving::new(self.waiter.control());
        // Ends the flag's loop even when a handler panics through it (`Sequential`
        // does not catch panics), as core's `serve_forever` does.
        let control = Arc::clone(self.waiter.control());
        let Some(running) = control.flag().enter_loop() else {
            return Ok(());
        };
        let result = self.run(servers, poll_interval);
        self.waiter.control().take_grace_deadline();
        drop(running);
        result
    }

    fn run(
        &mut self,
        servers: &mut [&mut dyn GroupMember],
        poll_interval: Duration,
    ) -> io::Result<()> {
        loop {
            let flag = self.waiter.flag();
            if flag.is_requested() {
                return Ok(());
            }
            let mut moved = false;
            for server in servers.iter_mut() {
                moved |= server.serve_ready();
            }
            if moved {
                continue; // more may be ready: pass again before sleeping
            }
            {
                let mut fds: Vec<PollFd<'_>> = servers
                    .iter()
                    .map(|server| PollFd::new(server.as_fd(), PollFlags::POLLIN))
                    .collect();
                fds.push(PollFd::new(self.waiter.as_fd(), PollFlags::POLLIN));
                match nix::poll::poll(&mut fds, poll::timeout_for(Some(poll_interval))) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            // The group's own wake-up (a shutdown request), drained.
            self.waiter.gather_ready()?;
        }
    }
}
