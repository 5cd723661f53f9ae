//! `fork` and `_exit`, for the Forking strategy.
//!
//! The child of a multi-threaded process may only rely on async-signal-safe
//! calls; like CPython's `ForkingMixIn`, the child here runs the request
//! handler anyway (the handler is the user's code) and then ends with
//! `_exit`, which runs no destructor, no `atexit` handler and no flush of
//! state it shares with the parent's other threads.

use std::io;

use nix::unistd::{ForkResult, Pid};

/// Which side of a fork this is.
pub(crate) enum Forked {
    /// The parent, with the child's pid.
    Parent(Pid),
    /// The child: it must end in [`exit_child`].
    Child,
}

/// Forks the process.
#[allow(unsafe_code)]
pub(crate) fn fork() -> io::Result<Forked> {
    // SAFETY: the child never returns into the server loop or unwinds into the
    // caller's frames: the Forking strategy runs exactly one request in it
    // (panics caught) and then calls `exit_child`, so no state shared with the
    // parent's other threads is torn down or used after the request.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Parent { child }) => Ok(Forked::Parent(child)),
        Ok(ForkResult::Child) => Ok(Forked::Child),
        Err(e) => Err(e.into()),
    }
}

/// Ends a forked child at once with `status`, Python's `os._exit`.
#[allow(unsafe_code)]
pub(crate) fn exit_child(status: i32) -> ! {
    // SAFETY: `_exit` takes no pointer and is async-signal-safe; skipping
    // destructors and `atexit` handlers is the point in a forked child.
    unsafe { libc::_exit(status) }
}
