//! How sockets print in the trace: like Python's socket repr.

use std::fmt;

use socket2::{Domain, Socket};
use std::os::fd::AsRawFd;

fn family(domain: Domain) -> &'static str {
    if domain == Domain::IPV4 {
        "AF_INET"
    } else if domain == Domain::IPV6 {
        "AF_INET6"
    } else if domain == Domain::UNIX {
        "AF_UNIX"
    } else {
        "AF_?"
    }
}

/// Writes `<socket fd=7, family=AF_INET, laddr=…, raddr=…>`.
pub(crate) fn describe(socket: Option<&Socket>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let Some(socket) = socket else {
        return f.write_str("<socket [closed]>");
    };
    write!(f, "<socket fd={}", socket.as_raw_fd())?;
    if let Ok(domain) = socket.domain() {
        write!(f, ", family={}", family(domain))?;
    }
    if let Ok(local) = socket.local_addr() {
        write_addr(f, "laddr", &local)?;
    }
    if let Ok(peer) = socket.peer_addr() {
        write_addr(f, "raddr", &peer)?;
    }
    f.write_str(">")
}

fn write_addr(f: &mut fmt::Formatter<'_>, name: &str, addr: &socket2::SockAddr) -> fmt::Result {
    if let Some(ip) = addr.as_socket() {
        write!(f, ", {name}={ip}")
    } else if let Some(path) = addr.as_pathname() {
        write!(f, ", {name}={}", path.display())
    } else {
        Ok(())
    }
}
