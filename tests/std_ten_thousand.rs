//! Ten thousand concurrent connections on one thread: `echo_server
//! --strategy multiplexed` (std's `HeapMultiplexed` over epoll, serving
//! core's async `Echo`) holds them all open, then each echoes once.
//!
//! The server runs as its own process: 10,000 client sockets and 10,000
//! server sockets do not fit under one process's descriptor limit here (the
//! hard limit is 20,000). Both processes raise their soft limit to the hard one.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use support::echo_process::Server;
use support::eventually;

const CONNECTIONS: usize = 10_000;

/// Raises this process's soft descriptor limit to the hard one (the
/// server, spawned after, inherits it) and returns it.
fn raise_nofile() -> u64 {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
    hard
}

/// A field of `/proc/PID/status` in kB (`VmHWM`, `VmRSS`).
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .expect("field")
}

/// The server's user + system CPU time, in clock ticks (`/proc/PID/stat`).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let (_, rest) = stat.rsplit_once(')').expect("comm");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the comm: state is field 0; utime and stime are 11 and 12.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[test]
fn ten_thousand_connections_held_open_then_each_echoes_once() {
    let hard = raise_nofile();
    assert!(
        hard >= (CONNECTIONS + 200) as u64,
        "the hard RLIMIT_NOFILE is {hard}: this test needs {} descriptors per process",
        CONNECTIONS + 200
    );
    let server = Server::start(&[
        "--strategy",
        "multiplexed",
        "--max-connections",
        &CONNECTIONS.to_string(),
    ]);
    let pid = server.pid();
    let baseline_fds = open_fds(pid);
    let rss_before = status_kb(pid, "VmRSS");

    let start = Instant::now();
    let mut clients = Vec::with_capacity(CONNECTIONS);
    for i in 0..CONNECTIONS {
        let stream = TcpStream::connect(server.ip())
            .unwrap_or_else(|e| panic!("connect #{i} after {:?}: {e}", start.elapsed()));
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        clients.push(stream);
    }
    let connected = start.elapsed();
    // Every connection accepted and held by the one serving thread.
    assert!(
        eventually(Duration::from_secs(30), || open_fds(pid)
            >= baseline_fds + CONNECTIONS),
        "the server holds {} descriptors, not {} + {CONNECTIONS}",
        open_fds(pid),
        baseline_fds
    );
    let held = start.elapsed();
    let cpu_before = cpu_ticks(pid);

    // Each echoes once: all requests out first, then every reply read, so
    // all 10,000 are in flight at once.
    let echo_start = Instant::now();
    for (i, client) in clients.iter_mut().enumerate() {
        client
            .write_all(format!("client {i:05}\n").as_bytes())
            .unwrap();
    }
    for (i, client) in clients.iter_mut().enumerate() {
        let mut reply = [0u8; 13];
        client
            .read_exact(&mut reply)
            .unwrap_or_else(|e| panic!("client {i}: no echo: {e}"));
        assert_eq!(&reply[..], format!("client {i:05}\n").as_bytes());
    }
    let echoed = echo_start.elapsed();
    let cpu_echo = cpu_ticks(pid) - cpu_before;
    let ticks_per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;

    // Still all open: none was evicted or timed out.
    assert!(open_fds(pid) >= baseline_fds + CONNECTIONS);
    let peak_kb = status_kb(pid, "VmHWM");
    println!(
        "{CONNECTIONS} connections: connected in {connected:?}, all held by the server after {held:?}; \
         one echo each in {echoed:?} (server CPU {:.3} s, {:.1} µs per echo); \
         server RSS {rss_before} kB idle, peak {peak_kb} kB ({:.1} kB per connection)",
        cpu_echo as f64 / ticks_per_second,
        cpu_echo as f64 / ticks_per_second * 1e6 / CONNECTIONS as f64,
        (peak_kb - rss_before) as f64 / CONNECTIONS as f64,
    );

    // The clients leave; the server lets go of every connection.
    drop(clients);
    assert!(
        eventually(Duration::from_secs(30), || open_fds(pid) <= baseline_fds),
        "the server still holds {} descriptors after the clients left (baseline {baseline_fds})",
        open_fds(pid)
    );
    server.stop();
}
