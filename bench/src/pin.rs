//! Pinning the server and the load generator to different CPUs, so on a
//! 2-core machine they do not fight for one core and the server's CPU time
//! is its own.

use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

/// The CPUs this process may run on, in order.
pub fn allowed_cpus() -> Vec<usize> {
    let Ok(set) = sched_getaffinity(Pid::from_raw(0)) else {
        return Vec::new();
    };
    (0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect()
}

/// Makes `command`'s process run only on `cpu` (inherited across its
/// `exec` and by its threads and children).
pub fn pin_command(command: &mut Command, cpu: usize) {
    let mut set = CpuSet::new();
    if set.set(cpu).is_err() {
        return; // out of range: run unpinned rather than not at all
    }
    // SAFETY: the closure runs in the forked child before exec and only
    // makes the sched_setaffinity system call, which is async-signal-safe;
    // it allocates nothing (the set was built before the fork).
    unsafe {
        command.pre_exec(move || {
            sched_setaffinity(Pid::from_raw(0), &set).map_err(std::io::Error::from)
        });
    }
}
