//! The two address families a server binds: IP (`SocketAddr`) and Unix paths.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use socket2::{Domain, SockAddr, Socket};

mod sealed {
    pub trait Sealed {}
    impl Sealed for std::net::SocketAddr {}
    impl Sealed for super::UnixAddr {}
}

/// An address family the servers bind: [`SocketAddr`] (TCP, UDP) or
/// [`UnixAddr`] (Unix stream and datagram). Sealed.
pub trait Address:
    sealed::Sealed + fmt::Debug + Clone + Eq + std::hash::Hash + Send + Sync + 'static + ToAddress<Self>
{
    /// Whether this is an IP family (where `SO_REUSEPORT` and `TCP_NODELAY` apply).
    const IS_INET: bool;

    /// The socket domain for this address.
    fn domain(&self) -> Domain;

    /// This address in the OS's form.
    fn to_sockaddr(&self) -> io::Result<SockAddr>;

    /// A peer or local address as the OS reported it.
    fn from_sockaddr(addr: &SockAddr) -> Self;

    /// What `server_address` reports once `socket` is bound to `requested`:
    /// the real port for IP (port 0 becomes the kernel's choice), the path
    /// as given for Unix (Python's behaviour).
    fn bound(socket: &Socket, requested: &Self) -> io::Result<Self>;
}

impl Address for SocketAddr {
    const IS_INET: bool = true;

    fn domain(&self) -> Domain {
        Domain::for_address(*self)
    }

    fn to_sockaddr(&self) -> io::Result<SockAddr> {
        Ok(SockAddr::from(*self))
    }

    fn from_sockaddr(addr: &SockAddr) -> Self {
        addr.as_socket()
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    fn bound(socket: &Socket, _requested: &Self) -> io::Result<Self> {
        socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bound to a non-IP address"))
    }
}

/// A Unix-domain socket address: a path, a Linux abstract name, or nothing
/// (an unbound client).
///
/// It prints as Python shows it: the path in quotes, or `''` for an unbound
/// client (Python's accepted Unix stream clients are `''`; its unbound
/// datagram senders are `None`, which here prints `''` too).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UnixAddr {
    kind: UnixKind,
}

// Shared, not owned: a server's address is cloned into each request's
// context (`req.server()`), so a clone must not allocate.
#[derive(Clone, PartialEq, Eq, Hash)]
enum UnixKind {
    Path(Arc<Path>),
    Abstract(Arc<[u8]>),
    Unnamed,
}

impl UnixAddr {
    /// The address of the socket file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            kind: UnixKind::Path(Arc::from(path.into())),
        }
    }

    /// The address of an unbound socket.
    pub const fn unnamed() -> Self {
        Self {
            kind: UnixKind::Unnamed,
        }
    }

    /// The socket file's path, if it has one.
    pub fn as_pathname(&self) -> Option<&Path> {
        match &self.kind {
            UnixKind::Path(p) => Some(p),
            _ => None,
        }
    }

    /// Whether this is an unbound socket's address (no reply can reach it).
    pub fn is_unnamed(&self) -> bool {
        self.kind == UnixKind::Unnamed
    }
}

impl fmt::Debug for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            UnixKind::Path(p) => write!(f, "{p:?}"),
            UnixKind::Abstract(name) => write!(f, "'\\0{}'", String::from_utf8_lossy(name)),
            UnixKind::Unnamed => f.write_str("''"),
        }
    }
}

impl fmt::Display for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            UnixKind::Path(p) => write!(f, "{}", p.display()),
            UnixKind::Abstract(name) => write!(f, "@{}", String::from_utf8_lossy(name)),
            UnixKind::Unnamed => f.write_str("(unnamed)"),
        }
    }
}

impl Address for UnixAddr {
    const IS_INET: bool = false;

    fn domain(&self) -> Domain {
        Domain::UNIX
    }

    fn to_sockaddr(&self) -> io::Result<SockAddr> {
        match &self.kind {
            UnixKind::Path(p) => SockAddr::unix(p),
            UnixKind::Abstract(name) => {
                let mut raw = Vec::with_capacity(name.len() + 1);
                raw.push(0);
                raw.extend_from_slice(name);
                SockAddr::unix(OsStr::from_bytes(&raw))
            }
            UnixKind::Unnamed => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the peer's Unix socket is unbound: no reply can reach it",
            )),
        }
    }

    fn from_sockaddr(addr: &SockAddr) -> Self {
        if let Some(path) = addr.as_pathname() {
            return Self::new(path);
        }
        if let Some(name) = addr.as_abstract_namespace() {
            return Self {
                kind: UnixKind::Abstract(Arc::from(name)),
            };
        }
        Self::unnamed()
    }

    fn bound(_socket: &Socket, requested: &Self) -> io::Result<Self> {
        Ok(requested.clone())
    }
}

/// Something a server address is made from: `"127.0.0.1:0"`, `("::1", 80)`
/// or a `SocketAddr` for IP servers (resolved, first result), a path for
/// Unix servers.
pub trait ToAddress<A> {
    /// The address, resolved.
    fn to_address(&self) -> io::Result<A>;
}

impl<T: ToSocketAddrs + ?Sized> ToAddress<SocketAddr> for T {
    fn to_address(&self) -> io::Result<SocketAddr> {
        self.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the name resolved to no address",
            )
        })
    }
}

impl<T: AsRef<Path> + ?Sized> ToAddress<UnixAddr> for T {
    fn to_address(&self) -> io::Result<UnixAddr> {
        Ok(UnixAddr::new(self.as_ref()))
    }
}

impl ToAddress<UnixAddr> for UnixAddr {
    fn to_address(&self) -> io::Result<UnixAddr> {
        Ok(self.clone())
    }
}
