//! Running a future to completion on the calling thread, for requests
//! whose I/O blocks: the blocking request API and async handlers served by
//! `Sequential` (and, in `socketserver-std`, by a thread or a child per request).

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

/// Polls `future` until it is ready and returns its output.
///
/// Made for futures whose I/O completes on the first poll: reads and writes
/// over a blocking connection wait inside the call, so such a future is
/// ready the first time it is polled and no waker is needed. A future that
/// pends on anything else (a timer of some runtime) is polled again at once,
/// in a loop, until it is ready: correct, but it spins.
///
/// ```
/// use socketserver_core::block_on;
///
/// assert_eq!(block_on(async { 6 * 7 }), 42);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        core::hint::spin_loop();
    }
}
