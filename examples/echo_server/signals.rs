//! SIGINT and SIGTERM: the first asks the server for a graceful stop (stop
//! accepting at once, give in-flight requests the grace period, then cut
//! what remains: the library does all of it); a second cuts at once.

use std::io;
use std::thread;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use socketserver_std::ShutdownHandle;

/// Installs the handlers, on a thread of their own.
pub fn install(stop: ShutdownHandle, grace: Duration) -> io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut signals = signals.forever();
            if signals.next().is_none() {
                return;
            }
            stop.request_within(grace);
            if signals.next().is_some() {
                stop.cut_in_flight();
            }
        })?;
    Ok(())
}
