//! One datagram and its sender in one system call.

use std::io;
use std::mem::MaybeUninit;

use socket2::{MaybeUninitSlice, SockAddr, Socket};

/// What [`recv_datagram`] received.
pub(crate) struct Datagram {
    /// Bytes written to the buffer.
    pub(crate) len: usize,
    /// The datagram was longer than the buffer (`MSG_TRUNC`).
    pub(crate) truncated: bool,
    /// The sender, as the kernel gave it (an unnamed Unix sender included).
    pub(crate) sender: SockAddr,
}

/// Receives one datagram into `buf` with its sender and its `MSG_TRUNC`
/// flag: `recvmsg` once, where a peek for the sender and a read cost two.
#[allow(unsafe_code)]
pub(crate) fn recv_datagram(
    socket: &Socket,
    buf: &mut [u8],
    flags: libc::c_int,
) -> io::Result<Datagram> {
    // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and every byte of
    // `buf` is initialised; socket2's receive calls only ever write
    // initialised bytes into the slice (the kernel's copy), never
    // uninitialised ones, so `buf` stays initialised when the borrow ends.
    let uninit = unsafe { &mut *(std::ptr::from_mut::<[u8]>(buf) as *mut [MaybeUninit<u8>]) };
    let mut bufs = [MaybeUninitSlice::new(uninit)];
    let (len, recv_flags, sender) = socket.recv_from_vectored_with_flags(&mut bufs, flags)?;
    Ok(Datagram {
        len,
        truncated: recv_flags.is_truncated(),
        sender,
    })
}
