//! Private network namespaces and TAP devices for tests.
//!
//! Every TAP test runs its network inside a namespace it creates itself, so no
//! host interface, address or route is ever touched, and everything vanishes
//! with the namespace. `unshare(CLONE_NEWNET)` in a spawned thread moves only
//! that thread (and the threads and processes it starts afterwards) into a
//! fresh namespace; when the thread and its children end, the namespace and
//! its TAP devices go away.
//!
//! Use from an integration test with
//! `#[path = "support/netns.rs"] mod netns;`.
//!
//! Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and `ip` from iproute2. Without
//! them a test skips with a reason, unless `REQUIRE_TAP=1`, where it fails.

#![allow(dead_code)] // each test crate uses a subset

use std::cell::Cell;
use std::fs::OpenOptions;
use std::panic;
use std::process::Command;
use std::thread;

use nix::sched::{CloneFlags, unshare};

thread_local! {
    /// Set on the thread that `in_new_netns` moved into a fresh namespace:
    /// `add_tap` refuses to run anywhere else, so a TAP device can never be
    /// created in the host's namespace by mistake.
    static IN_PRIVATE_NETNS: Cell<bool> = const { Cell::new(false) };
}

/// Whether this process may create namespaces and TAP devices; `Err` says why
/// not. Cheap: probes in a throwaway thread, which takes its namespace along.
pub fn tap_privileges() -> Result<(), String> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|e| format!("cannot open /dev/net/tun: {e} (needs root or CAP_NET_ADMIN)"))?;
    thread::spawn(|| unshare(CloneFlags::CLONE_NEWNET))
        .join()
        .map_err(|_| "namespace probe thread panicked".to_string())?
        .map_err(|e| format!("unshare(CLONE_NEWNET) failed: {e} (needs CAP_SYS_ADMIN)"))?;
    match Command::new("ip").arg("-V").output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!("`ip -V` failed: {}", out.status)),
        Err(e) => Err(format!("`ip` (iproute2) not runnable: {e}")),
    }
}

/// True when `REQUIRE_TAP=1`: a missing prerequisite must fail the test.
pub fn tap_required() -> bool {
    std::env::var_os("REQUIRE_TAP").is_some_and(|v| v == "1")
}

/// Decides whether a test whose prerequisite check gave `check` runs: `true`
/// to run; `false` after printing why it skips; a panic (test failure) when
/// the check failed under `REQUIRE_TAP=1`.
pub fn run_or_skip(test_name: &str, check: Result<(), String>) -> bool {
    match check {
        Ok(()) => true,
        Err(why) if tap_required() => {
            panic!("{test_name}: REQUIRE_TAP=1 but {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED {test_name}: {why} (set REQUIRE_TAP=1 to make this a failure)");
            record_skip(test_name, &why);
            false
        }
    }
}

/// Appends the skip to the file `SOCKETSERVER_SKIP_LOG` names, if any, so
/// the test command can list every skip at its end (`scripts/test-all`).
fn record_skip(test_name: &str, why: &str) {
    use std::io::Write;
    let Some(path) = std::env::var_os("SOCKETSERVER_SKIP_LOG") else {
        return;
    };
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut log| writeln!(log, "{test_name}: {why}"));
    if let Err(e) = appended {
        eprintln!("could not record the skip of {test_name} in the skip log: {e}");
    }
}

/// `run_or_skip` for the TAP privileges themselves.
pub fn require_tap_or_skip(test_name: &str) -> bool {
    run_or_skip(test_name, tap_privileges())
}

/// Runs `f` on a new thread inside a fresh network namespace whose loopback
/// is up, and returns its result; a panic in `f` is re-raised here. The
/// namespace ends with the thread and whatever it started (kill and reap any
/// child process before `f` returns).
pub fn in_new_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let worker = thread::Builder::new().name("netns".into()).spawn(move || {
        if let Err(e) = unshare(CloneFlags::CLONE_NEWNET) {
            panic!("unshare(CLONE_NEWNET) failed: {e}");
        }
        IN_PRIVATE_NETNS.with(|flag| flag.set(true));
        if let Err(e) = ip(&["link", "set", "lo", "up"]) {
            panic!("{e}");
        }
        f()
    });
    let handle = match worker {
        Ok(handle) => handle,
        Err(e) => panic!("cannot spawn the namespace thread: {e}"),
    };
    match handle.join() {
        Ok(value) => value,
        Err(payload) => panic::resume_unwind(payload),
    }
}

/// Runs `ip ARGS...` (iproute2) in the current thread's namespace.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip {}`: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Creates TAP device `name` in this thread's private namespace, gives the
/// kernel side `cidr` (e.g. "192.168.69.100/24") and sets it up. The device is
/// persistent until the namespace ends, so QEMU or a smoltcp `TunTapInterface`
/// can attach to it by name. Panics unless called inside `in_new_netns`.
pub fn add_tap(name: &str, cidr: &str) -> Result<(), String> {
    assert!(
        IN_PRIVATE_NETNS.with(Cell::get),
        "add_tap({name}) outside in_new_netns: refusing to touch the host's network"
    );
    ip(&["tuntap", "add", "dev", name, "mode", "tap"])?;
    ip(&["addr", "add", cidr, "dev", name])?;
    ip(&["link", "set", name, "up"])
}
