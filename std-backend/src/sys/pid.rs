//! The process id without a system call per question.
//!
//! Every connection asks whether it still lives in the process that
//! registered it (a forked child's copy of the registry is private): two
//! `getpid` per connection. The answer only changes at a fork, so it is
//! cached, and a `pthread_atfork` handler forgets it in every new child
//! (ours and any other `fork` through libc).

use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// The cached id; 0 when unknown (no process has id 0).
static CACHED: AtomicU32 = AtomicU32::new(0);
/// Whether the fork handler is installed, so a cached id can be trusted.
static FORGOTTEN_AT_FORK: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// Runs in the child right after a fork, before `fork` returns there.
extern "C" fn forget_in_child() {
    CACHED.store(0, Ordering::Relaxed);
}

/// This process's id, as `std::process::id()` gives it.
#[allow(unsafe_code)]
pub(crate) fn current() -> u32 {
    INSTALL.call_once(|| {
        // SAFETY: registers a child handler only: a plain function that
        // makes one atomic store, which is async-signal-safe, as code run
        // in the child of a multi-threaded process must be.
        let installed = unsafe { libc::pthread_atfork(None, None, Some(forget_in_child)) } == 0;
        FORGOTTEN_AT_FORK.store(installed, Ordering::Release);
    });
    if !FORGOTTEN_AT_FORK.load(Ordering::Acquire) {
        return std::process::id();
    }
    match CACHED.load(Ordering::Relaxed) {
        0 => {
            let pid = std::process::id();
            CACHED.store(pid, Ordering::Relaxed);
            pid
        }
        pid => pid,
    }
}

#[cfg(test)]
mod tests {
    use super::current;

    #[test]
    fn the_cached_id_is_the_processs_and_a_child_sees_its_own() {
        assert_eq!(current(), std::process::id());
        assert_eq!(current(), std::process::id());
        let (read, write) = nix::unistd::pipe().expect("pipe");
        // SAFETY (test): the child only compares two ids, writes one byte
        // and leaves with `_exit`.
        #[allow(unsafe_code)]
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                let same = current() == std::process::id() && current() != 0;
                let _ = nix::unistd::write(&write, &[u8::from(same)]);
                crate::sys::fork::exit_child(0);
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(write);
                let mut byte = [0u8; 1];
                let n = nix::unistd::read(&read, &mut byte).expect("read");
                let _ = nix::sys::wait::waitpid(child, None);
                assert_eq!((n, byte[0]), (1, 1), "the child's id is its own");
            }
        }
        assert_eq!(current(), std::process::id(), "the parent's is unchanged");
    }
}
