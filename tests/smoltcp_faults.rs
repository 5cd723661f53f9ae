//! Fault injection on the smoltcp path over TAP (issue 13): the stack's
//! device drops, corrupts, duplicates and reorders frames both ways
//! (smoltcp's `FaultInjector` plus `support/impaired.rs`), or limits their
//! size, and the Linux kernel is the client. A 1 MiB echo must come back
//! intact within seconds, under `Sequential` and `Multiplexed`, and the server
//! must serve a fresh client afterwards.
//!
//! Each test runs in its own namespace (see `support/smoltcp_server.rs`);
//! every wait is bounded (`behaviour::IO_TIMEOUT` per read or write, and
//! the whole echo must take less than [`ECHO_LIMIT`]).

#[path = "support/behaviour.rs"]
mod behaviour;
#[path = "support/netns.rs"]
mod netns;
#[path = "support/smoltcp_server.rs"]
mod smoltcp_server;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use smoltcp_server::impaired::Faults;
use smoltcp_server::{Spec, Strategy, with_server};
use socketserver_smoltcp::TcpConfig;

/// How long a 1 MiB echo may take through [`Faults::LOSSY`]: 0.4 s with
/// loss recovery (a debug build), 24 s with `TcpConfig::loss_recovery` off
/// (smoltcp waits at least 1 s for each segment lost while the peer sends).
const ECHO_LIMIT: Duration = Duration::from_secs(10);

fn check(what: &str, result: behaviour::Check) {
    if let Err(e) = result {
        panic!("{what}: {e}");
    }
}

/// A 1 MiB echo (timed), then a fresh client's round trip.
fn echo_then_fresh_client(addr: SocketAddr) -> Duration {
    let target = behaviour::tcp(addr);
    let start = Instant::now();
    check(
        "1 MiB through the faults",
        behaviour::echo_large(&target, 1 << 20),
    );
    let took = start.elapsed();
    check(
        "a fresh client after the 1 MiB echo",
        behaviour::echo_round_trip(&target),
    );
    took
}

fn lossy_echo(name: &str, strategy: Strategy, pool: usize) {
    let spec = Spec::new(strategy, pool).with_faults(Faults::LOSSY);
    let Some((took, report)) = with_server(name, spec, echo_then_fresh_client) else {
        return;
    };
    println!(
        "{name}: 1 MiB echoed intact in {:.2} s through 5% loss, 1% corruption, 5% duplication, 10% reordering each way; shuffled {:?}; gate {:?}",
        took.as_secs_f64(),
        report.shuffled,
        report.gate
    );
    assert!(
        took < ECHO_LIMIT,
        "{name}: the 1 MiB echo took {took:?} (limit {ECHO_LIMIT:?})"
    );
    let s = report.shuffled;
    assert!(
        s.rx_duplicated > 0 && s.rx_reordered > 0 && s.tx_duplicated > 0 && s.tx_reordered > 0,
        "{name}: the link did not duplicate and reorder both ways: {s:?}"
    );
    assert!(
        report.gate.fast_retransmits > 0,
        "{name}: 5% loss and no fast retransmit: {:?}",
        report.gate
    );
}

#[test]
fn lossy_link_1mib_echo_sync() {
    lossy_echo("lossy_link_1mib_echo_sync", Strategy::Sync, 4);
}

#[test]
fn lossy_link_1mib_echo_multiplexed() {
    lossy_echo("lossy_link_1mib_echo_multiplexed", Strategy::Multiplexed, 8);
}

/// The kernel's side of the link carries at most 1280-byte packets, and
/// the stack's device drops every frame longer than that plus the Ethernet
/// header: the stack must size its segments by the peer's MSS, or the echo
/// stalls.
fn size_limited(name: &str, strategy: Strategy, pool: usize) {
    let faults = Faults {
        max_size: 1280 + 14,
        ..Faults::default()
    };
    let spec = Spec::new(strategy, pool).with_faults(faults);
    let result = with_server(name, spec, |addr| {
        netns::ip(&["link", "set", "tap0", "mtu", "1280"]).unwrap_or_else(|e| panic!("{e}"));
        echo_then_fresh_client(addr)
    });
    let Some((took, _)) = result else {
        return;
    };
    println!(
        "{name}: 1 MiB echoed intact in {:.2} s over a 1280-byte MTU",
        took.as_secs_f64()
    );
    assert!(took < ECHO_LIMIT, "{name}: took {took:?}");
}

#[test]
fn size_limited_link_sync() {
    size_limited("size_limited_link_sync", Strategy::Sync, 4);
}

#[test]
fn size_limited_link_multiplexed() {
    size_limited("size_limited_link_multiplexed", Strategy::Multiplexed, 8);
}

/// Frames longer than 1000 bytes vanish (a black hole for the kernel's
/// full-size segments): a client streaming 64 KiB cannot get through, the
/// stack's idle timeout frees its socket, and a fresh client whose frames
/// fit is served.
fn black_hole(name: &str, strategy: Strategy) {
    let faults = Faults {
        max_size: 1000,
        ..Faults::default()
    };
    let mut spec = Spec::new(strategy, 1).with_faults(faults);
    spec.tcp = TcpConfig {
        idle_timeout: Some(Duration::from_secs(1)),
        ..TcpConfig::DEFAULT
    };
    let result = with_server(name, spec, |addr| {
        let mut stuck = TcpStream::connect_timeout(&addr, behaviour::IO_TIMEOUT).expect("connect");
        stuck
            .set_read_timeout(Some(behaviour::IO_TIMEOUT))
            .expect("timeout");
        stuck.write_all(&[7u8; 64 * 1024]).expect("queue 64 KiB");
        let start = Instant::now();
        let mut buf = [0u8; 1024];
        // Nothing of it arrives; the server gives up on the connection.
        let ended = stuck.read(&mut buf);
        let freed = start.elapsed();
        let fresh = behaviour::echo_round_trip(&behaviour::tcp(addr));
        (ended.map_err(|e| e.kind()), freed, fresh)
    });
    let Some(((ended, freed, fresh), report)) = result else {
        return;
    };
    println!(
        "{name}: stuck client ended with {ended:?} after {:.2} s; pool {:?}",
        freed.as_secs_f64(),
        report.pool
    );
    assert!(
        !matches!(ended, Ok(n) if n > 0),
        "{name}: bytes came back through the black hole"
    );
    assert!(
        freed < Duration::from_secs(5),
        "{name}: the stuck connection held the only socket {freed:?}"
    );
    check("a fresh client after the black hole", fresh);
}

#[test]
fn black_hole_frees_the_socket_sync() {
    black_hole("black_hole_frees_the_socket_sync", Strategy::Sync);
}

#[test]
fn black_hole_frees_the_socket_multiplexed() {
    black_hole(
        "black_hole_frees_the_socket_multiplexed",
        Strategy::Multiplexed,
    );
}
