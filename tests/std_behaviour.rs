//! The behaviour suite (tests/support/behaviour.rs) against every std server
//! type and strategy, over loopback and Unix sockets.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::pin;
use std::time::Duration;

use socketserver::{Echo, EchoDatagram, Multiplexed, Sequential};
use socketserver_std::{
    Address, Forking, ForkingTCPServer, ForkingUDPServer, ForkingUnixDatagramServer,
    ForkingUnixStreamServer, SocketConnection, SocketStreamServer, TCPServer, Threading,
    ThreadingTCPServer, ThreadingUDPServer, ThreadingUnixDatagramServer, ThreadingUnixStreamServer,
    UDPServer, UnixAddr, UnixDatagramServer, UnixStreamServer,
};
use support::behaviour::{self, DatagramTarget, StreamTarget};

/// How many of `n` open connections a server serves at once.
#[derive(Clone, Copy)]
enum Expect {
    One,
    All,
    /// Forking in the test's own process: each child inherits the client
    /// ends of the connections open when it was forked, its own included, so
    /// a client that closes without a half-close (a reset, a silent client)
    /// never reaches EOF, and open connections wait on each other. Those
    /// checks run against the `echo_server` process instead
    /// (tests/echo_server_contract.rs).
    NotInProcess,
}

fn stream_suite(target: &dyn StreamTarget, expect: Expect) {
    behaviour::echo_round_trip(target).expect("round trip");
    behaviour::echo_large(target, 1 << 20).expect("1 MiB echo");
    behaviour::garbage_then_serving(target).expect("garbage");
    if matches!(expect, Expect::NotInProcess) {
        return;
    }
    behaviour::reset_mid_stream(target).expect("reset mid-stream");
    behaviour::silent_client_then_serving(target).expect("silent client");
    let n = 16;
    let want = match expect {
        Expect::One => 1,
        Expect::All => n,
        Expect::NotInProcess => return,
    };
    let served =
        behaviour::concurrent_open(target, n, Duration::from_millis(300)).expect("concurrent");
    assert_eq!(served, want, "open connections served at once");
}

fn datagram_suite(target: &dyn DatagramTarget) {
    behaviour::datagram_echo(target).expect("datagram echo");
    behaviour::datagram_truncation(target, 8192).expect("truncation at 8192");
    behaviour::datagram_one_reply_each(target, 10).expect("one reply each");
}

fn ip() -> &'static str {
    "127.0.0.1:0"
}

#[test]
fn tcp_sync() {
    let (_s, addr): (_, SocketAddr) =
        run_server!(TCPServer::new(ip(), Sequential::new(Echo::<1024>)));
    stream_suite(&behaviour::tcp(addr), Expect::One);
}

#[test]
fn tcp_threading() {
    let (_s, addr) = run_server!(ThreadingTCPServer::new(ip(), Threading::new(Echo::<1024>)));
    stream_suite(&behaviour::tcp(addr), Expect::All);
}

#[test]
fn tcp_forking() {
    let _fork = support::fork_lock();
    let (_s, addr) = run_server!(ForkingTCPServer::new(ip(), Forking::new(Echo::<1024>)));
    stream_suite(&behaviour::tcp(addr), Expect::NotInProcess);
}

/// Serves core's async `Echo` on 32 `Multiplexed` slots, pinned in a scoped
/// thread (its request futures must not move), while `suite` runs.
fn with_multiplexed<A: Address>(address: A, suite: impl FnOnce(A)) {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel();
        scope.spawn(move || {
            let slots = pin!(Multiplexed::<SocketConnection<A>, _, _, 32>::new(
                Echo::<1024>
            ));
            let mut server = SocketStreamServer::new(address, slots).expect("bind");
            tx.send((server.shutdown_handle(), server.server_address().clone()))
                .unwrap();
            server
                .serve_forever(std::time::Duration::from_millis(100))
                .expect("serve_forever");
            server.server_close();
        });
        let (stop, bound) = rx.recv().unwrap();
        suite(bound);
        stop.shutdown();
    });
}

#[test]
fn tcp_multiplexed() {
    let addr: SocketAddr = ip().parse().unwrap();
    with_multiplexed(addr, |addr| {
        stream_suite(&behaviour::tcp(addr), Expect::All);
    });
}

#[test]
fn tcp_ipv6() {
    let (_s, addr) = run_server!(ThreadingTCPServer::new(
        "[::1]:0",
        Threading::new(Echo::<1024>)
    ));
    assert!(addr.is_ipv6());
    behaviour::echo_large(&behaviour::tcp(addr), 1 << 20).expect("IPv6 echo");
}

fn unix_path(name: &str) -> PathBuf {
    support::temp_socket(name)
}

#[test]
fn unix_sync() {
    let path = unix_path("sync");
    let (_s, _) = run_server!(UnixStreamServer::new(&path, Sequential::new(Echo::<1024>)));
    stream_suite(&behaviour::unix(&path), Expect::One);
}

#[test]
fn unix_threading() {
    let path = unix_path("threading");
    let (_s, _) = run_server!(ThreadingUnixStreamServer::new(
        &path,
        Threading::new(Echo::<1024>)
    ));
    stream_suite(&behaviour::unix(&path), Expect::All);
}

#[test]
fn unix_forking() {
    let _fork = support::fork_lock();
    let path = unix_path("forking");
    let (_s, _) = run_server!(ForkingUnixStreamServer::new(
        &path,
        Forking::new(Echo::<1024>)
    ));
    stream_suite(&behaviour::unix(&path), Expect::NotInProcess);
}

#[test]
fn unix_multiplexed() {
    let path = unix_path("multiplexed");
    with_multiplexed(UnixAddr::new(&path), |_| {
        stream_suite(&behaviour::unix(&path), Expect::All);
    });
}

#[test]
fn udp_sync() {
    let (_s, addr) = run_server!(UDPServer::new(ip(), Sequential::new(EchoDatagram)));
    datagram_suite(&behaviour::udp(addr));
}

#[test]
fn udp_threading() {
    let (_s, addr) = run_server!(ThreadingUDPServer::new(ip(), Threading::new(EchoDatagram)));
    datagram_suite(&behaviour::udp(addr));
}

#[test]
fn udp_forking() {
    let _fork = support::fork_lock();
    let (_s, addr) = run_server!(ForkingUDPServer::new(ip(), Forking::new(EchoDatagram)));
    datagram_suite(&behaviour::udp(addr));
}

#[test]
fn unix_datagram_sync() {
    let path = unix_path("dgram-sync");
    let (_s, _) = run_server!(UnixDatagramServer::new(
        &path,
        Sequential::new(EchoDatagram)
    ));
    datagram_suite(&behaviour::unix_datagram(&path));
    unbound_sender_gets_no_reply_and_server_goes_on(&path);
}

#[test]
fn unix_datagram_threading() {
    let path = unix_path("dgram-threading");
    let (_s, _) = run_server!(ThreadingUnixDatagramServer::new(
        &path,
        Threading::new(EchoDatagram)
    ));
    datagram_suite(&behaviour::unix_datagram(&path));
    unbound_sender_gets_no_reply_and_server_goes_on(&path);
}

#[test]
fn unix_datagram_forking() {
    let _fork = support::fork_lock();
    let path = unix_path("dgram-forking");
    let (_s, _) = run_server!(ForkingUnixDatagramServer::new(
        &path,
        Forking::new(EchoDatagram)
    ));
    datagram_suite(&behaviour::unix_datagram(&path));
}

fn unbound_sender_gets_no_reply_and_server_goes_on(path: &std::path::Path) {
    let unbound = std::os::unix::net::UnixDatagram::unbound().expect("socket");
    unbound.send_to(b"anyone?", path).expect("send");
    behaviour::datagram_echo(&behaviour::unix_datagram(path)).expect("still serving");
}
