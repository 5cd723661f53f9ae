//! The process's monotonic clock in core's terms, shared by the waiter and
//! the connections, so instants taken by either compare.

use std::sync::OnceLock;

use socketserver_core::time::Instant;

/// Microseconds since the first call in this process.
pub(crate) fn now() -> Instant {
    static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
    let origin = ORIGIN.get_or_init(std::time::Instant::now);
    Instant::from_micros(u64::try_from(origin.elapsed().as_micros()).unwrap_or(u64::MAX))
}
