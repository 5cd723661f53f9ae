//! The echo handler, with every live connection registered so the grace
//! period can end them: after it passes, a signal-handling thread shuts the
//! remaining connections down and their handlers return.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use socketserver::{Echo, Error, StreamRequest, StreamRequestHandler};
use socketserver_std::{Address, Interrupter, SocketConnection};

/// The connections being served now.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    live: Arc<Mutex<HashMap<u64, Interrupter>>>,
    next: Arc<AtomicU64>,
}

impl Registry {
    fn add(&self, interrupter: Interrupter) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, interrupter);
        id
    }

    fn remove(&self, id: u64) {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    /// Shuts down every connection still being served.
    pub fn interrupt_all(&self) {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        for interrupter in live.values() {
            interrupter.interrupt();
        }
    }
}

/// Core's `Echo` (bytes echoed as they arrive, until EOF), registered while it runs.
#[derive(Debug, Clone)]
pub struct TrackedEcho {
    registry: Registry,
    id: Option<u64>,
}

impl TrackedEcho {
    /// A handler registering its connections in `registry`.
    pub fn new(registry: Registry) -> Self {
        Self { registry, id: None }
    }
}

type Conn<A> = SocketConnection<A>;

impl<A: Address> StreamRequestHandler<Conn<A>> for TrackedEcho {
    fn setup(&mut self, req: &mut StreamRequest<'_, Conn<A>>) -> Result<(), Error<std::io::Error>> {
        self.id = Some(self.registry.add(req.connection().interrupter()));
        Ok(())
    }

    fn handle(
        &mut self,
        req: &mut StreamRequest<'_, Conn<A>>,
    ) -> Result<(), Error<std::io::Error>> {
        let mut echo = Echo::<16384>;
        match echo.handle(req) {
            // A reset client is an ordinary end for an echo, not a server error.
            Err(Error::Io(e)) if is_disconnect(&e) => Ok(()),
            other => other,
        }
    }

    fn finish(
        &mut self,
        _req: &mut StreamRequest<'_, Conn<A>>,
    ) -> Result<(), Error<std::io::Error>> {
        if let Some(id) = self.id.take() {
            self.registry.remove(id);
        }
        Ok(())
    }
}

fn is_disconnect(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionReset | ConnectionAborted | BrokenPipe | NotConnected
    )
}
