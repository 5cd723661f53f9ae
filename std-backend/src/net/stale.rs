//! Replacing the socket file of a Unix server that is gone, never one that
//! still serves.

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use socket2::{Domain, SockAddr, Socket, Type};

/// Removes the socket file at `path` if it is stale: only a socket file that
/// refuses a connection (`ECONNREFUSED`: nobody listens) is removed. A path
/// that accepts, or whose backlog is full (`EAGAIN`), belongs to a running
/// server: that is `AddrInUse`. Any other answer (`EACCES`, …) leaves the
/// file for `bind` to refuse; a path that is not a socket is never touched.
/// The probe never blocks: a blocking connect to a server with a full
/// backlog would wait until it accepts.
pub(crate) fn remove_stale_socket(path: &Path, ty: Type) -> io::Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Ok(());
    }
    let probe = Socket::new(Domain::UNIX, ty, None)?;
    probe.set_nonblocking(true)?;
    match probe.connect(&SockAddr::unix(path)?) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path),
        Ok(()) => Err(io::Error::from(io::ErrorKind::AddrInUse)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            Err(io::Error::from(io::ErrorKind::AddrInUse))
        }
        Err(_) => Ok(()),
    }
}
