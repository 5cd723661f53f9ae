//! SIGINT and SIGTERM: stop accepting at once, then give in-flight requests
//! the grace period; a second signal ends the grace period at once.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use socketserver_std::ShutdownHandle;

/// What the signal thread tells the main thread.
#[derive(Debug, Clone, Default)]
pub struct Graceful {
    /// When the first signal arrived.
    signalled: Arc<Mutex<Option<Instant>>>,
    /// A second signal: end the grace period now.
    hurry: Arc<AtomicBool>,
}

impl Graceful {
    /// The end of the grace period: the first signal (or now) + grace;
    /// `None` when a huge `--grace` (say 1e19) passes the end of the clock.
    pub fn deadline(&self, grace: Duration) -> Option<Instant> {
        let at = *self
            .signalled
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        at.unwrap_or_else(Instant::now).checked_add(grace)
    }

    /// Whether a second signal asked to end the grace period now.
    pub fn hurried(&self) -> bool {
        self.hurry.load(Ordering::Acquire)
    }
}

/// Installs the handlers: the first signal requests `stop` (the loop stops
/// accepting at once); a second one sets [`Graceful::hurried`].
pub fn install(stop: ShutdownHandle) -> io::Result<Graceful> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let graceful = Graceful::default();
    let theirs = graceful.clone();
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut received = signals.forever();
            if received.next().is_none() {
                return;
            }
            *theirs
                .signalled
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
            stop.request();
            if received.next().is_some() {
                theirs.hurry.store(true, Ordering::Release);
            }
        })?;
    Ok(graceful)
}
