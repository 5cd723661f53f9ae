//! `fork` and `_exit`, for the Forking strategy, and the signal state a
//! child starts with.
//!
//! The child of a multi-threaded process may only rely on async-signal-safe
//! calls; like CPython's `ForkingMixIn`, the child here runs the request
//! handler anyway (the handler is the user's code) and then ends with
//! `_exit`, which runs no destructor, no `atexit` handler and no flush of
//! state it shares with the parent's other threads.

use std::io;

use nix::sys::signal::{
    SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, pthread_sigmask, sigaction,
};
use nix::unistd::{ForkResult, Pid};

/// Which side of a fork this is.
pub(crate) enum Forked {
    /// The parent, with the child's pid.
    Parent(Pid),
    /// The child: it must end in [`exit_child`].
    Child,
}

/// Signals that stop a process, and the action a child gives each one the
/// application catches: the default (the child ends), as a freshly
/// executed program would have it. A caught SIGPIPE is ignored instead, as
/// Rust's runtime sets it, so that a write to a vanished peer fails with
/// `EPIPE` rather than killing the child.
const CHILD_ACTIONS: [(Signal, SigHandler); 5] = [
    (Signal::SIGINT, SigHandler::SigDfl),
    (Signal::SIGTERM, SigHandler::SigDfl),
    (Signal::SIGHUP, SigHandler::SigDfl),
    (Signal::SIGQUIT, SigHandler::SigDfl),
    (Signal::SIGPIPE, SigHandler::SigIgn),
];

/// Forks the process. The calling thread blocks every signal but SIGCHLD
/// across the fork, so that none is handled in the child before
/// [`reset_signals`] has run: the application's handler would run there (a
/// `signal-hook` handler writes to its self-pipe, which the parent reads).
///
/// SIGCHLD stays open: an earlier child that exits during the fork sends it
/// to this thread, and were it blocked here the kernel would not discard it
/// (a blocked signal is never ignored) but hand it to another thread of the
/// process, whose blocking call with a timeout (`SO_RCVTIMEO`) then fails
/// with `EINTR`; under a busy `Forking` server a client thread of the same
/// process lost one reply in five so. A new child has no children, and
/// inherits no pending signal, so no SIGCHLD can reach it early.
#[allow(unsafe_code)]
pub(crate) fn fork() -> io::Result<Forked> {
    let mut blocked = SigSet::all();
    blocked.remove(Signal::SIGCHLD);
    let mut before = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&blocked), Some(&mut before))?;
    // SAFETY: the child never returns into the server loop or unwinds into the
    // caller's frames: the Forking strategy runs exactly one request in it
    // (panics caught) and then calls `exit_child`, so no state shared with the
    // parent's other threads is torn down or used after the request.
    let forked = unsafe { nix::unistd::fork() };
    if !matches!(forked, Ok(ForkResult::Child)) {
        // Cannot fail: the set is valid and `how` is SIG_SETMASK.
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&before), None);
    }
    match forked {
        Ok(ForkResult::Parent { child }) => Ok(Forked::Parent(child)),
        Ok(ForkResult::Child) => {
            reset_signals(before);
            Ok(Forked::Child)
        }
        Err(e) => Err(e.into()),
    }
}

/// In a fresh child, every signal but SIGCHLD still blocked (a new child
/// has no children to send it one): each of [`CHILD_ACTIONS`] the
/// application catches gets its child action (those it ignores stay
/// ignored, as `nohup` and a shell's background jobs expect), the stopping
/// ones are unblocked, and the rest of the mask is the parent thread's.
/// Only async-signal-safe calls.
#[allow(unsafe_code)]
fn reset_signals(mut mask: SigSet) {
    for (signal, action) in CHILD_ACTIONS {
        let child = SigAction::new(action, SaFlags::empty(), SigSet::empty());
        // SAFETY: installs SIG_DFL or SIG_IGN, no handler function, in a
        // child whose only thread has every signal blocked but SIGCHLD,
        // which nothing sends it before this returns.
        let Ok(previous) = (unsafe { sigaction(signal, &child) }) else {
            continue;
        };
        if matches!(previous.handler(), SigHandler::SigDfl | SigHandler::SigIgn) {
            // Not caught: put back what the application chose.
            // SAFETY: reinstates a disposition that is not a handler function.
            let _ = unsafe { sigaction(signal, &previous) };
        }
        if matches!(action, SigHandler::SigDfl) {
            mask.remove(signal);
        }
    }
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&mask), None);
}

/// Ends a forked child at once with `status`, Python's `os._exit`.
#[allow(unsafe_code)]
pub(crate) fn exit_child(status: i32) -> ! {
    // SAFETY: `_exit` takes no pointer and is async-signal-safe; skipping
    // destructors and `atexit` handlers is the point in a forked child.
    unsafe { libc::_exit(status) }
}
