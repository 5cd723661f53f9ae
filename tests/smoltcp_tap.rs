//! The smoltcp backend over TAP, against the Linux kernel as the client.
//!
//! Each test makes its own network namespace and TAP device (kernel side
//! 192.168.69.100/24, smoltcp 192.168.69.1/24), runs core's echo handlers on
//! the smoltcp stack in a thread there, and connects with std sockets through
//! the shared behaviour suite. Without the privileges the tests say why and
//! pass; with `REQUIRE_TAP=1` they fail.

#[path = "support/behaviour.rs"]
mod behaviour;
#[path = "support/netns.rs"]
mod netns;
#[path = "support/smoltcp_server.rs"]
mod smoltcp_server;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use smoltcp_server::{Spec, Strategy, with_server};
use socketserver_smoltcp::TcpConfig;

fn check(what: &str, result: behaviour::Check) {
    if let Err(e) = result {
        panic!("{what}: {e}");
    }
}

#[test]
fn tcp_echo_1mib_sync() {
    with_server("tcp_echo_1mib_sync", Spec::new(Strategy::Sync, 4), |addr| {
        let target = behaviour::tcp(addr);
        check("round trip", behaviour::echo_round_trip(&target));
        check("1 MiB", behaviour::echo_large(&target, 1 << 20));
        check("garbage", behaviour::garbage_then_serving(&target));
    });
}

#[test]
fn tcp_echo_1mib_multiplexed() {
    with_server(
        "tcp_echo_1mib_multiplexed",
        Spec::new(Strategy::Multiplexed, 8),
        |addr| {
            let target = behaviour::tcp(addr);
            check("round trip", behaviour::echo_round_trip(&target));
            check("1 MiB", behaviour::echo_large(&target, 1 << 20));
        },
    );
}

#[test]
fn udp_echo_and_truncation() {
    with_server(
        "udp_echo_and_truncation",
        Spec::new(Strategy::Udp, 0),
        |addr| {
            let target = behaviour::udp(addr);
            check("echo", behaviour::datagram_echo(&target));
            check(
                "one reply each",
                behaviour::datagram_one_reply_each(&target, 20),
            );
            check("truncation", behaviour::datagram_truncation(&target, 8192));
        },
    );
}

#[test]
fn multiplexed_serves_n_at_once() {
    with_server(
        "multiplexed_serves_n_at_once",
        Spec::new(Strategy::Multiplexed, 8),
        |addr| {
            let target = behaviour::tcp(addr);
            let served = behaviour::concurrent_open(&target, 8, Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(served, 8, "Multiplexed<8> must serve 8 connections at once");
        },
    );
}

/// 64 clients connect at the same moment to a pool of 4 sockets; each sends
/// a line, half-closes and reads the echo. Returns (served, elapsed).
fn burst(addr: SocketAddr, clients: usize) -> (usize, Duration) {
    let barrier = Barrier::new(clients);
    let start = Instant::now();
    let served = thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|i| {
                let barrier = &barrier;
                scope.spawn(move || -> Result<(), String> {
                    barrier.wait();
                    let msg = format!("client {i}\n");
                    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(30))
                        .map_err(|e| format!("connect #{i}: {e}"))?;
                    s.set_read_timeout(Some(Duration::from_secs(30)))
                        .map_err(|e| e.to_string())?;
                    s.write_all(msg.as_bytes())
                        .map_err(|e| format!("send #{i}: {e}"))?;
                    s.shutdown(std::net::Shutdown::Write)
                        .map_err(|e| e.to_string())?;
                    let mut back = Vec::new();
                    s.read_to_end(&mut back)
                        .map_err(|e| format!("read #{i}: {e}"))?;
                    if back != msg.as_bytes() {
                        return Err(format!("client {i}: echo differs"));
                    }
                    Ok(())
                })
            })
            .collect();
        let mut served = 0;
        for h in handles {
            match h.join() {
                Ok(Ok(())) => served += 1,
                Ok(Err(e)) => eprintln!("burst: {e}"),
                Err(_) => eprintln!("burst: a client panicked"),
            }
        }
        served
    });
    (served, start.elapsed())
}

fn burst_test(name: &'static str, strategy: Strategy) {
    let Some(((served, elapsed), report)) =
        with_server(name, Spec::new(strategy, 4), |addr| burst(addr, 64))
    else {
        return;
    };
    println!(
        "{name}: {served}/64 clients served ({:.0}%) in {:.2} s with a 4-socket pool; SYN gate {:?}",
        served as f64 * 100.0 / 64.0,
        elapsed.as_secs_f64(),
        report.gate
    );
    assert_eq!(served, 64, "every client of the burst must be served");
    assert!(elapsed < Duration::from_secs(30), "burst took {elapsed:?}");
}

#[test]
fn burst_of_64_over_pool_of_4_sync() {
    burst_test("burst_of_64_over_pool_of_4_sync", Strategy::Sync);
}

#[test]
fn burst_of_64_over_pool_of_4_multiplexed() {
    burst_test(
        "burst_of_64_over_pool_of_4_multiplexed",
        Strategy::Multiplexed,
    );
}

#[test]
fn peer_reset_frees_the_socket() {
    // One socket: the next client is served only if the reset one was re-armed.
    with_server(
        "peer_reset_frees_the_socket",
        Spec::new(Strategy::Sync, 1),
        |addr| {
            let target = behaviour::tcp(addr);
            check("reset", behaviour::reset_mid_stream(&target));
            check(
                "silent client",
                behaviour::silent_client_then_serving(&target),
            );
        },
    );
    with_server(
        "peer_reset_frees_the_socket(multiplexed)",
        Spec::new(Strategy::Multiplexed, 1),
        |addr| {
            let target = behaviour::tcp(addr);
            check("reset", behaviour::reset_mid_stream(&target));
            check("after", behaviour::echo_round_trip(&target));
        },
    );
}

/// A client that connects and says nothing holds the only socket until the
/// idle timeout frees it; then the next client is served.
fn silent_peer(name: &'static str, spec: Spec) {
    with_server(name, spec, move |addr| {
        let mut silent =
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        silent
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let start = Instant::now();
        let mut buf = [0u8; 16];
        // The server gives up on the silent peer: EOF or a reset.
        let _ = silent.read(&mut buf);
        let freed = start.elapsed();
        assert!(
            freed < Duration::from_secs(5),
            "{name}: silent peer held the socket {freed:?}"
        );
        assert!(
            freed >= Duration::from_millis(400),
            "{name}: freed too early ({freed:?})"
        );
        // Kept open (never sending our FIN): the stack's FIN-WAIT-2 timeout
        // must free the socket anyway.
        let _keep = silent;
        check(
            "after the silent peer",
            behaviour::echo_round_trip(&behaviour::tcp(addr)),
        );
    });
}

#[test]
fn silent_peer_freed_by_idle_timeout() {
    let mut multiplexed = Spec::new(Strategy::Multiplexed, 1);
    multiplexed.idle_timeout = Some(Duration::from_millis(500));
    multiplexed.tcp = TcpConfig {
        fin_timeout: Some(Duration::from_millis(500)),
        ..TcpConfig::DEFAULT
    };
    silent_peer("silent_peer(multiplexed idle timeout)", multiplexed);
    let mut sync = Spec::new(Strategy::Sync, 1);
    sync.tcp = TcpConfig {
        idle_timeout: Some(Duration::from_millis(500)),
        ..TcpConfig::DEFAULT
    };
    silent_peer("silent_peer(sync idle timeout)", sync);
}

#[test]
fn shutdown_stops_promptly_with_a_client_connected() {
    let result = with_server(
        "shutdown_stops_promptly",
        Spec::new(Strategy::Multiplexed, 4),
        |addr| {
            let target = behaviour::tcp(addr);
            check("round trip", behaviour::echo_round_trip(&target));
            // Left open across the shutdown: server_close must end it.
            let mut open =
                TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
            open.write_all(b"x").expect("send");
            open
        },
    );
    if let Some((mut open, report)) = result {
        assert!(
            report.stop_latency < Duration::from_secs(1),
            "stop took {:?}",
            report.stop_latency
        );
        // The namespace is gone, so the connection can only have ended.
        open.set_read_timeout(Some(Duration::from_secs(1)))
            .expect("timeout");
        let mut buf = [0u8; 8];
        let _ = open.read(&mut buf);
    }
}
