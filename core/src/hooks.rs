//! Python's BaseServer hooks, with Python's defaults.

use core::error::Error;
use core::fmt::Debug;

/// The overridable steps of a server, Python's `BaseServer` methods.
///
/// Every method has Python's default, so a user overrides one and keeps the
/// rest. The server and its strategy do the mechanical part of each step
/// (accepting, half-closing, closing, spawning); a hook is called at the step,
/// in Python's order, and can veto ([`verify_request`](Self::verify_request)),
/// observe, or add work. `A` is the client address type, so one hooks value can
/// serve every backend when it is generic over `A`.
///
/// Methods take `&self`: a threading or forking strategy clones the hooks into
/// each worker, as it does the handler, so shared state belongs behind an
/// atomic, a `Mutex` or an `Arc`.
///
/// ```
/// use core::sync::atomic::{AtomicUsize, Ordering};
/// use socketserver_core::ServerHooks;
///
/// /// Refuses every client after the first ten.
/// struct FirstTen<'a>(&'a AtomicUsize);
///
/// impl<A: core::fmt::Debug> ServerHooks<A> for FirstTen<'_> {
///     fn verify_request(&self, _client: &A) -> bool {
///         self.0.fetch_add(1, Ordering::Relaxed) < 10
///     }
/// }
/// ```
pub trait ServerHooks<A: Debug + ?Sized> {
    /// Called when the server is bound and listening (after Python's
    /// `server_bind` and `server_activate`).
    fn server_activate(&self) {}

    /// Returns whether to serve this client. `false` closes the request without
    /// building a handler; the client reads EOF. Default: `true`.
    fn verify_request(&self, client: &A) -> bool {
        let _ = client;
        true
    }

    /// Called before the strategy takes the request (Python's `process_request`).
    fn process_request(&self, client: &A) {
        let _ = client;
    }

    /// Called just before the handler is built (Python's `finish_request`).
    fn finish_request(&self, client: &A) {
        let _ = client;
    }

    /// Called when `setup`, `handle` or `finish` failed, a worker panicked,
    /// or the server ended the request (idle or slow peer, eviction, cut at a
    /// shutdown's deadline). Not called when the peer vanished (a reset, a
    /// broken pipe): that ends a request normally and is logged at debug
    /// level. The default writes Python's report: with `log` or `defmt` at
    /// error level, else with the `std` feature to stderr; with `std`, at
    /// most 10 reports a second, then one line counting those left out, so a
    /// flood cannot fill a disk. The server keeps serving.
    fn handle_error(&self, client: &A, error: &dyn Error) {
        report_error(client, error);
    }

    /// Called before the request is half-closed (Python's `shutdown_request`).
    fn shutdown_request(&self, client: &A) {
        let _ = client;
    }

    /// Called before the request is closed (Python's `close_request`).
    fn close_request(&self, client: &A) {
        let _ = client;
    }

    /// Called by `handle_request` when its timeout passes with no request.
    fn handle_timeout(&self) {}

    /// Called once per pass of `serve_forever`, whether or not a request came.
    fn service_actions(&self) {}

    /// Called when the server closes (Python's `server_close`).
    fn server_close(&self) {}
}

/// Python's default hooks: serve everyone, report errors, do nothing else.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultHooks;

impl<A: Debug + ?Sized> ServerHooks<A> for DefaultHooks {}

const DASHES: &str = "----------------------------------------";

/// Writes Python's `handle_error` report for `client` and `error` (with
/// `std`, rate-limited: see [`ServerHooks::handle_error`]).
pub fn report_error<A: Debug + ?Sized>(client: &A, error: &dyn Error) {
    #[cfg(feature = "std")]
    match crate::report_limit::ERRORS.admit() {
        crate::report_limit::Admit::Suppress => return,
        crate::report_limit::Admit::Write { suppressed_before } if suppressed_before > 0 => {
            report_suppressed(suppressed_before);
        }
        crate::report_limit::Admit::Write { .. } => {}
    }
    #[cfg(all(feature = "std", not(feature = "log")))]
    {
        std::eprintln!("{DASHES}");
        std::eprintln!("Exception occurred during processing of request from {client:?}");
        std::eprintln!("{error}");
        std::eprintln!("{DASHES}");
    }
    #[cfg(feature = "log")]
    ::log::error!(target: "socketserver::server",
        "{DASHES}\nException occurred during processing of request from {client:?}\n{error}\n{DASHES}");
    #[cfg(feature = "defmt")]
    let _ = DASHES;
    #[cfg(feature = "defmt")]
    ::defmt::error!(
        "Exception occurred during processing of request from {}: {}",
        ::defmt::Debug2Format(client),
        ::defmt::Display2Format(&error)
    );
    #[cfg(not(any(feature = "std", feature = "log", feature = "defmt")))]
    {
        let _ = (client, error, DASHES);
    }
}

/// Says how many reports the rate limit left out.
#[cfg(feature = "std")]
fn report_suppressed(count: u64) {
    #[cfg(not(feature = "log"))]
    std::eprintln!("({count} more request errors not reported: at most 10 a second)");
    #[cfg(feature = "log")]
    ::log::error!(target: "socketserver::server",
        "({count} more request errors not reported: at most 10 a second)");
}

/// Reports a datagram reply that was dropped because it could not be
/// queued without blocking (a peer that does not read its queue). With
/// `std`, one line every 10 s at most (to stderr, or at error level through
/// `log`, beside `handle_error`'s report), counting the drops since the
/// last; otherwise a warning through `log` or `defmt`.
pub fn report_dropped_reply<A: Debug + ?Sized>(client: &A) {
    #[cfg(feature = "std")]
    {
        let crate::report_limit::Admit::Write { suppressed_before } =
            crate::report_limit::DROPPED_REPLIES.admit()
        else {
            return;
        };
        #[cfg(not(feature = "log"))]
        std::eprintln!(
            "reply to {client:?} dropped: its queue is full ({suppressed_before} more dropped since the last report)"
        );
        #[cfg(feature = "log")]
        ::log::error!(target: "socketserver::server",
            "reply to {client:?} dropped: its queue is full ({suppressed_before} more dropped since the last report)");
    }
    #[cfg(all(not(feature = "std"), feature = "log"))]
    ::log::warn!(target: "socketserver::server", "reply to {:?} dropped: its queue is full", client);
    #[cfg(feature = "defmt")]
    ::defmt::warn!(
        "reply to {} dropped: its queue is full",
        ::defmt::Debug2Format(client)
    );
    #[cfg(not(any(feature = "std", feature = "log", feature = "defmt")))]
    let _ = client;
}
