//! Resetting a TCP connection that another thread or process may hold.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Dissolves a TCP connection at once with a reset: `connect` with an
/// `AF_UNSPEC` address (Linux's `tcp_disconnect`). The peer reads
/// `ECONNRESET`; a thread blocked reading or writing the socket wakes with an
/// error; a forked child holding a copy of the descriptor sees the same
/// socket dissolved. Closing with `SO_LINGER` 0 would reset only when the
/// last copy closes, and `shutdown` sends a FIN, which the peer would take
/// for a complete transfer.
#[allow(unsafe_code)]
pub(crate) fn disconnect(fd: BorrowedFd<'_>) -> io::Result<()> {
    // An all-zero sockaddr is AF_UNSPEC (0); its size is that of the family field
    // and more, as the kernel requires.
    // SAFETY: `zeroed` is a valid `sockaddr` (plain integers and bytes);
    // `connect` reads `size_of::<sockaddr>()` bytes from a pointer to it that
    // lives across the call, and `fd` is a descriptor borrowed for the call.
    let rc = unsafe {
        let zeroed: libc::sockaddr = std::mem::zeroed();
        libc::connect(
            fd.as_raw_fd(),
            &zeroed,
            std::mem::size_of::<libc::sockaddr>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
