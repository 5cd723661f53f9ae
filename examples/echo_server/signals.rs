//! SIGINT and SIGTERM: stop accepting at once, then give in-flight requests
//! the grace period before their connections are shut down.

use std::io;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use socketserver_std::ShutdownHandle;

use crate::tracked::Registry;

/// The stop sequence shared by the signal thread and the main thread.
pub struct Graceful {
    /// Tells the signal thread that everything ended before the grace passed.
    done: Sender<()>,
    /// When the first signal arrived, for the main thread's own deadline.
    pub signalled: std::sync::Arc<std::sync::Mutex<Option<Instant>>>,
}

impl Graceful {
    /// What is left of the grace period: from the signal (or now) + grace.
    pub fn remaining(&self, grace: Duration) -> Duration {
        let at = *self
            .signalled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match deadline(at.unwrap_or_else(Instant::now), grace) {
            Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            None => grace,
        }
    }

    /// Everything has finished: the signal thread need not interrupt.
    pub fn finished(&self) {
        let _ = self.done.send(());
    }
}

/// Installs the handlers: on the first signal, `stop` is requested (the loop
/// stops accepting at once); if requests are still running `grace` later,
/// `registry`'s connections are shut down. A second signal does that at once.
pub fn install(stop: ShutdownHandle, registry: Registry, grace: Duration) -> io::Result<Graceful> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let (done, finished) = mpsc::channel();
    let signalled = std::sync::Arc::new(std::sync::Mutex::new(None));
    let at = std::sync::Arc::clone(&signalled);
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if signals.forever().next().is_none() {
                return;
            }
            *at.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
            stop.request();
            let deadline = deadline(Instant::now(), grace);
            loop {
                match finished.recv_timeout(Duration::from_millis(20)) {
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    Err(RecvTimeoutError::Timeout) => {}
                }
                let passed = deadline.is_some_and(|d| Instant::now() >= d);
                if passed || signals.pending().next().is_some() {
                    registry.interrupt_all();
                    return;
                }
            }
        })?;
    Ok(Graceful { done, signalled })
}

/// `from + grace`; `None` when a huge `--grace` (say 1e19) passes the end of
/// the clock: a grace that never ends, not an overflow panic.
fn deadline(from: Instant, grace: Duration) -> Option<Instant> {
    from.checked_add(grace)
}
