//! What a handler sees of its server: Python's `self.server`.

use core::fmt::{self, Debug};

use crate::shutdown::ShutdownFlag;

/// The server a request belongs to, as its handler reaches it:
/// `req.server()` on every request ([`StreamRequest`](crate::StreamRequest),
/// [`AsyncStreamRequest`](crate::AsyncStreamRequest),
/// [`DatagramRequest`](crate::DatagramRequest)), Python's `self.server`.
///
/// Every strategy lends one, wherever the request runs: on the serving
/// thread (`Sequential`, `Multiplexed`), in a worker thread (`Threading`) or
/// in a forked child (`Forking`), for streams and datagrams alike. It costs
/// no heap: the request holds a reference.
///
/// Python's third use of `self.server`, attributes the application put on
/// the server (shared state), is the handler's own fields here: the server
/// clones the handler value per request, so a field holding an `Arc` (or a
/// `&'static`) is shared by every request and with whoever built the
/// handler. (In a forked child, as in Python, it is the child's copy.)
///
/// ```
/// use socketserver_core::{Connection, Error, Message, StreamRequest, StreamRequestHandler};
///
/// /// Answers each line with the server's address; `STOP` stops the server.
/// #[derive(Clone)]
/// struct Where;
///
/// impl<C: Connection> StreamRequestHandler<C> for Where {
///     fn handle(&mut self, req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
///         let mut line = [0u8; 64];
///         loop {
///             match req.read_line(&mut line)? {
///                 0 => return Ok(()),
///                 n if &line[..n] == b"STOP\n" => {
///                     req.server().shutdown();
///                     return Ok(());
///                 }
///                 _ => {
///                     let address = Message::new(format_args!("{:?}\n", req.server().server_address()));
///                     req.write_all(address.as_str().as_bytes())?;
///                 }
///             }
///         }
///     }
/// }
/// ```
// `Sync`: a request that holds one stays `Send` (a multiplexed request's
// future, which a server moved to its serving thread holds). Not `Debug`:
// that would put a formatter in every vtable, linked into firmware that
// never prints one.
pub trait ServerContext<A>: Sync {
    /// Python's `server_address`: the address the server is bound to (the
    /// real port when port 0 was asked for; a Unix server's path).
    fn server_address(&self) -> &A;

    /// Python's `self.server.shutdown()` from a handler: asks the server's
    /// `serve_forever` to stop, and returns without waiting for it.
    ///
    /// Called from the serving thread (`Sequential`, `Multiplexed`) the loop
    /// returns after its current pass (Python's call deadlocks there); from
    /// a worker thread it wakes the loop of a std server, which stops at
    /// once (a core `Server` without a waker sees it at its next wake-up,
    /// at most `poll_interval` later); from a `Forking` child it reaches
    /// the parent's loop, not the child's copy. What follows is an ordinary
    /// shutdown: this request and the others in flight finish as
    /// `server_close` says. With no loop running, it follows
    /// [`ShutdownFlag::request`] (kept for a first loop, dropped after a
    /// loop has ended): a main loop of `serve_ready` calls that wants to
    /// see it holds its own loop on the flag
    /// ([`ShutdownFlag::enter_loop`]) and checks
    /// [`ShutdownFlag::is_requested`].
    fn shutdown(&self);
}

/// The context of a request served on the thread that runs the server's
/// loop: the server's address and its shutdown flag, borrowed. core's
/// server lends one to its strategy for each request; build one to run a
/// handler by hand (in a test).
///
/// ```
/// use socketserver_core::{InlineServer, ServerContext, ShutdownFlag};
///
/// let flag = ShutdownFlag::new();
/// let address = 7u16;
/// let server = InlineServer::new(&address, &flag);
/// assert_eq!(*server.server_address(), 7);
/// server.shutdown();
/// assert!(flag.enter_loop().is_none(), "the first loop stops at once");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct InlineServer<'a, A> {
    address: &'a A,
    flag: &'a ShutdownFlag,
}

impl<'a, A> InlineServer<'a, A> {
    /// The context of the server bound to `address` whose loop watches `flag`.
    pub const fn new(address: &'a A, flag: &'a ShutdownFlag) -> Self {
        Self { address, flag }
    }
}

impl<A: Sync> ServerContext<A> for InlineServer<'_, A> {
    fn server_address(&self) -> &A {
        self.address
    }

    /// On the serving thread the flag itself is the request: the loop
    /// checks it after the request and before it waits again.
    fn shutdown(&self) {
        self.flag.request();
    }
}

/// A request's borrow of its server's context (what `req.server()`
/// returns), printed as the address it reports.
#[derive(Clone, Copy)]
pub(crate) struct ServerRef<'r, A>(pub(crate) &'r dyn ServerContext<A>);

impl<A: Debug> Debug for ServerRef<'_, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerContext")
            .field("server_address", self.0.server_address())
            .finish_non_exhaustive()
    }
}
