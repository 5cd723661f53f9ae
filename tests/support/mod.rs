//! Shared helpers of the std and echo_server integration tests: resource
//! counts for leak checks, temporary socket paths, the fork lock, and the
//! `echo_server` binary. The behaviour suite itself is [`behaviour`].
#![allow(dead_code)] // each test crate uses a subset

pub mod behaviour;
pub mod echo_process;
pub mod running;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Serializes tests that fork: a fork copies whatever the other test
/// threads hold, and child counts must not mix.
pub fn fork_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Open descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Threads of this process.
pub fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// Live or zombie child processes of this process.
pub fn children() -> usize {
    children_of(std::process::id()).len()
}

/// Live or zombie child processes of `pid`.
pub fn children_of(pid: u32) -> Vec<u32> {
    processes_where(|stat| stat.ppid == pid)
}

/// Live or zombie processes in process group `pgid`.
pub fn process_group_members(pgid: u32) -> Vec<u32> {
    processes_where(|stat| stat.pgrp == pgid)
}

/// The fields of `/proc/PID/stat` the tests look at.
struct Stat {
    ppid: u32,
    pgrp: u32,
}

fn processes_where(mut keep: impl FnMut(&Stat) -> bool) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| parse_stat(&stat))
                .is_some_and(|stat| keep(&stat))
        })
        .collect()
}

fn parse_stat(stat: &str) -> Option<Stat> {
    // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(1);
    Some(Stat {
        ppid: fields.next()?.parse().ok()?,
        pgrp: fields.next()?.parse().ok()?,
    })
}

/// Waits until `f` holds or `within` passes; returns whether it held.
pub fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A fresh socket path under a per-process directory in /tmp.
pub fn temp_socket(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("socketserver-tests-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{name}-{n}.sock"))
}

/// The `echo_server` example binary, brought up to date once per test
/// process: `cargo test` builds examples only as test harnesses under hashed
/// names, so without this a stale binary from an earlier build would be tested.
/// `ECHO_SERVER_BIN=PATH` tests another build instead (an older commit's, to
/// show that a new test fails there).
pub fn echo_server_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("ECHO_SERVER_BIN") {
            eprintln!("testing ECHO_SERVER_BIN={}", Path::new(&path).display());
            return PathBuf::from(path);
        }
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> -> target/<profile>/examples/echo_server
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile> directory");
        let bin = profile_dir.join("examples").join("echo_server");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--example", "echo_server"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        let status = build
            .status()
            .expect("run cargo build --example echo_server");
        assert!(status.success(), "cargo build --example echo_server failed");
        assert!(bin.exists(), "echo_server not found at {}", bin.display());
        bin
    })
}
