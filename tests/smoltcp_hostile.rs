//! Hostile peers against the smoltcp pool over TAP (issue 8): forged SYNs
//! from addresses that never answer ARP, and silent connections filling the
//! pool. Each test runs in its own namespace (see `support/smoltcp_server.rs`),
//! sends only there, and is bounded in frames, connections and time.
//!
//! The servers run with the backend's default `TcpConfig`: the defences must
//! hold without tuning.

#[path = "support/behaviour.rs"]
mod behaviour;
#[path = "support/forge.rs"]
mod forge;
#[path = "support/netns.rs"]
mod netns;
#[path = "support/smoltcp_server.rs"]
mod smoltcp_server;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use smoltcp_server::{Spec, Strategy, with_server};
use socketserver_smoltcp::DEFAULT_MAC;

/// Forged SYNs per test.
const FORGED: usize = 2000;
/// Silent connections per test.
const SILENT: usize = 1000;

/// One echo round trip from a fresh client; returns how long it took from
/// the start of `connect` to the echo, or why it failed (within 15 s).
fn served_in(addr: SocketAddr) -> Result<Duration, String> {
    let start = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| format!("connect after {:?}: {e}", start.elapsed()))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let msg = b"real client\n";
    s.write_all(msg).map_err(|e| format!("send: {e}"))?;
    let mut back = [0u8; 12];
    s.read_exact(&mut back)
        .map_err(|e| format!("echo after {:?}: {e}", start.elapsed()))?;
    if &back != msg {
        return Err("echo differs".into());
    }
    Ok(start.elapsed())
}

/// 2,000 forged SYNs in flight (half before the real client connects, half
/// after), then the real client must be served within 5 s.
fn forged_flood(name: &'static str, strategy: Strategy, pool: usize) {
    let Some((result, report)) = with_server(name, Spec::new(strategy, pool), |addr| {
        forge::send_forged_syns("tap0", DEFAULT_MAC, addr, 0..FORGED / 2);
        let real = thread::spawn(move || served_in(addr));
        forge::send_forged_syns("tap0", DEFAULT_MAC, addr, FORGED / 2..FORGED);
        let result = real
            .join()
            .unwrap_or_else(|_| Err("client panicked".into()));
        // The pool must keep serving once the flood is over.
        let after = served_in(addr);
        (result, after)
    }) else {
        return;
    };
    let (during, after) = result;
    println!(
        "{name}: real client under {FORGED} forged SYNs: {during:?}; next client: {after:?}; gate {:?}; pool {:?}",
        report.gate, report.pool
    );
    let during = during.unwrap_or_else(|e| panic!("{name}: real client not served: {e}"));
    assert!(
        during < Duration::from_secs(5),
        "{name}: real client served after {during:?}"
    );
    after.unwrap_or_else(|e| panic!("{name}: client after the flood: {e}"));
}

#[test]
fn forged_syns_do_not_lock_out_a_real_client_sync() {
    forged_flood("forged_syns_sync", Strategy::Sync, 4);
}

#[test]
fn forged_syns_do_not_lock_out_a_real_client_multiplexed() {
    forged_flood("forged_syns_multiplexed", Strategy::Multiplexed, 16);
}

/// 1,000 clients connect and never send a byte; then a new client must be
/// served within 2 s.
fn silent_crowd(name: &'static str, strategy: Strategy, pool: usize) {
    forge::raise_fd_limit();
    let Some((result, report)) = with_server(name, Spec::new(strategy, pool), |addr| {
        let silent = forge::silent_clients(addr, SILENT);
        // Let the silent crowd fill the pool and the backlog.
        thread::sleep(Duration::from_millis(2500));
        let result = served_in(addr);
        drop(silent);
        result
    }) else {
        return;
    };
    println!(
        "{name}: new client behind {SILENT} silent connections: {result:?}; gate {:?}; pool {:?}",
        report.gate, report.pool
    );
    let took = result.unwrap_or_else(|e| panic!("{name}: new client not served: {e}"));
    assert!(
        took < Duration::from_secs(2),
        "{name}: new client served after {took:?}"
    );
}

#[test]
fn silent_connections_do_not_keep_a_new_client_waiting_sync() {
    silent_crowd("silent_crowd_sync", Strategy::Sync, 4);
}

#[test]
fn silent_connections_do_not_keep_a_new_client_waiting_multiplexed() {
    silent_crowd("silent_crowd_multiplexed", Strategy::Multiplexed, 16);
}
