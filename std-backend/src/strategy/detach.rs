//! What std's workers need of a kind of request, said once per kind so that
//! `Threading` and `Forking` are each written once for connections and
//! datagrams: a request a worker thread can take (it must outlive the
//! server's borrow), and what a parent process keeps of a request it handed
//! to a child.

use socketserver_core::{
    Accepted, Connection, DatagramSocket, NothingHeld, Packet, Request, Serve, ServerContext,
    ServerHooks, run_request,
};

use crate::strategy::CatchPanic;

/// A request that can move to a worker thread.
pub trait Detach: Request {
    /// The request as the worker holds it: owning what it borrowed.
    type Detached: Request<Addr = Self::Addr> + Send + 'static;

    /// Copies or moves what the request borrows of the server.
    fn detach(self) -> Self::Detached;
}

/// A request a worker runs with handler `H` and hooks `K`: core's request
/// runner, with panics caught.
pub trait Run<H, K>: Request {
    /// Runs the request, whose handler reaches `server` as `req.server()`;
    /// returns success.
    fn run(
        self,
        handler: &H,
        hooks: &K,
        server: &dyn ServerContext<Self::Addr>,
        rbuf: &mut [u8],
        wbuf: &mut [u8],
    ) -> bool;
}

impl<C, H, K> Run<H, K> for Accepted<C>
where
    C: Connection,
    H: Serve<Accepted<C>>,
    K: ServerHooks<C::Addr>,
{
    fn run(
        self,
        handler: &H,
        hooks: &K,
        server: &dyn ServerContext<C::Addr>,
        rbuf: &mut [u8],
        wbuf: &mut [u8],
    ) -> bool {
        run_request(handler, hooks, server, self, rbuf, wbuf, &CatchPanic)
    }
}

impl<D, H, K> Run<H, K> for DetachedPacket<D>
where
    D: DatagramSocket,
    H: for<'a> Serve<Packet<'a, D>>,
    K: ServerHooks<D::Addr>,
{
    fn run(
        self,
        handler: &H,
        hooks: &K,
        server: &dyn ServerContext<D::Addr>,
        rbuf: &mut [u8],
        wbuf: &mut [u8],
    ) -> bool {
        let DetachedPacket {
            mut socket,
            data,
            truncated,
            client,
            mut reply,
        } = self;
        let packet = Packet {
            socket: &mut socket,
            data: &data,
            truncated,
            client,
            reply: &mut reply,
        };
        run_request(handler, hooks, server, packet, rbuf, wbuf, &CatchPanic)
    }
}

impl<C> Detach for Accepted<C>
where
    C: Connection + Send + 'static,
    C::Addr: Send + 'static,
{
    type Detached = Self;

    fn detach(self) -> Self {
        self
    }
}

/// A datagram a worker thread owns: a handle on the server's socket (the
/// same descriptor), a copy of the bytes, and its own reply buffer.
#[derive(Debug)]
pub struct DetachedPacket<D: DatagramSocket> {
    socket: D,
    data: Vec<u8>,
    truncated: bool,
    client: D::Addr,
    reply: Vec<u8>,
}

impl<D> Detach for Packet<'_, D>
where
    D: DatagramSocket + Clone + Send + 'static,
    D::Addr: Send + 'static,
{
    type Detached = DetachedPacket<D>;

    fn detach(self) -> DetachedPacket<D> {
        DetachedPacket {
            socket: self.socket.clone(),
            data: self.data.to_vec(),
            truncated: self.truncated,
            client: self.client,
            reply: vec![0; self.reply.len()],
        }
    }
}

/// Nothing to release: the socket is the server's (the hooks still run, for
/// a worker that could not start).
impl<D: DatagramSocket> Request for DetachedPacket<D> {
    type Addr = D::Addr;
    type Error = D::Error;
    type Held = NothingHeld;

    fn client(&self) -> &D::Addr {
        &self.client
    }

    fn into_held(self) -> Option<NothingHeld> {
        None
    }
}

/// What a parent process keeps of a request it handed to a forked child.
pub trait HandOff: Request {
    /// The parent's copy of the request's connection, kept until the child
    /// is reaped so that the parent can reset it (`None` for a datagram).
    fn parent_copy(held: Self::Held) -> Option<ParentCopy>;
}

impl<C: Connection + Send + 'static> HandOff for Accepted<C> {
    fn parent_copy(held: C) -> Option<ParentCopy> {
        Some(ParentCopy(Box::new(held)))
    }
}

impl<D: DatagramSocket> HandOff for Packet<'_, D> {
    fn parent_copy(held: NothingHeld) -> Option<ParentCopy> {
        match held {}
    }
}

/// The parent's copy of a child's connection (see [`HandOff`]): closed
/// when the child is reaped, or reset at a shutdown's deadline or when the
/// child died by a signal (a plain close would let the peer read a clean
/// end of stream after a cut transfer).
#[derive(Debug)]
pub struct ParentCopy(Box<dyn HeldConnection + Send>);

impl ParentCopy {
    pub(crate) fn close(self) {
        self.0.close_held();
    }

    pub(crate) fn abort(self) {
        self.0.abort_held();
    }
}

/// A connection of any type behind one box.
trait HeldConnection: std::fmt::Debug {
    fn close_held(self: Box<Self>);
    fn abort_held(self: Box<Self>);
}

impl<C: Connection> HeldConnection for C {
    fn close_held(self: Box<Self>) {
        (*self).close();
    }
    fn abort_held(self: Box<Self>) {
        (*self).abort();
    }
}
