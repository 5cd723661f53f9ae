//! SIGINT and SIGTERM: stop accepting at once, give in-flight requests the
//! grace period, then cut what remains; a second signal cuts at once.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use socketserver_std::ShutdownHandle;

/// How often the signal thread looks for the deadline or a second signal.
const TICK: Duration = Duration::from_millis(20);

/// When the grace period began, shared with the main thread.
#[derive(Debug, Clone, Default)]
pub struct Graceful {
    signalled: Arc<Mutex<Option<Instant>>>,
}

impl Graceful {
    /// What is left of the grace period that began with the first signal
    /// (all of it if no signal came: the loop ended for another reason).
    pub fn remaining(&self, grace: Duration) -> Duration {
        let at = *self
            .signalled
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match at.and_then(|at| at.checked_add(grace)) {
            Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            None => grace,
        }
    }
}

/// Installs the handlers: the first signal requests `stop` (the loop stops
/// accepting at once); when `grace` has passed, or at a second signal, every
/// connection still open is cut (reset) through `stop`, from this thread, so
/// that even a request served inline (`--strategy sync`) ends.
pub fn install(stop: ShutdownHandle, grace: Duration) -> io::Result<Graceful> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let graceful = Graceful::default();
    let theirs = graceful.clone();
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if signals.forever().next().is_none() {
                return;
            }
            let now = Instant::now();
            *theirs
                .signalled
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(now);
            stop.request();
            // A huge --grace (say 1e19) passes the end of the clock: never cut.
            let deadline = now.checked_add(grace);
            loop {
                thread::sleep(TICK);
                let passed = deadline.is_some_and(|d| Instant::now() >= d);
                if passed || signals.pending().next().is_some() {
                    stop.cut_in_flight();
                    return;
                }
            }
        })?;
    Ok(graceful)
}
