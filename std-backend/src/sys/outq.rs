//! How many bytes a socket's sends still hold in the kernel.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `SIOCOUTQ`: the bytes charged to the socket's send buffer. For a Unix
/// datagram socket that is every reply still queued, unread, at its peers.
#[allow(unsafe_code)]
pub(crate) fn queued_bytes(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let mut queued: libc::c_int = 0;
    // SAFETY: SIOCOUTQ writes one `int` through the pointer, which points to
    // a live local of that type; `fd` is a descriptor borrowed for the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
    if rc == 0 {
        Ok(usize::try_from(queued).unwrap_or(0))
    } else {
        Err(io::Error::last_os_error())
    }
}
