//! Signals and forked children: whatever handlers the application
//! installed, a child starts with SIGINT, SIGTERM and SIGHUP at their
//! default action and unblocked, so `signal_children` and Ctrl-C to the
//! process group end children at once; a signal the application ignores
//! stays ignored. This test process installs `signal-hook` handlers, as
//! `echo_server` does, so the tests live in a binary of their own.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, killpg, pthread_sigmask, signal};
use nix::unistd::Pid;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use socketserver::{Echo, Handled};
use socketserver_std::{Forking, ForkingTCPServer, Signal};
use support::echo_process::Server;

/// A forking server on this thread with one client in flight: the child
/// serving it has echoed one byte and waits for more.
fn server_with_a_child() -> (ForkingTCPServer<Echo<64>>, TcpStream) {
    let mut server = ForkingTCPServer::new("127.0.0.1:0", Forking::new(Echo::<64>)).unwrap();
    let mut client = TcpStream::connect(server.server_address()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(server.handle_request().unwrap(), Handled::Request);
    client.write_all(b"x").unwrap();
    let mut one = [0u8; 1];
    client.read_exact(&mut one).unwrap();
    assert_eq!(server.strategy().active_children().count(), 1);
    (server, client)
}

/// Reaps; returns whether every child has ended within `within`.
fn children_end(server: &mut ForkingTCPServer<Echo<64>>, within: Duration) -> bool {
    support::eventually(within, || {
        server.strategy_mut().collect_children(false);
        server.strategy().active_children().next().is_none()
    })
}

/// Fails the test unless every child ends within 3 s, killing them first:
/// a child holds a copy of this process's client socket, so the server's
/// close would wait for it until its idle timeout.
fn assert_children_end(server: &mut ForkingTCPServer<Echo<64>>, what: &str) {
    if !children_end(server, Duration::from_secs(3)) {
        server.strategy().signal_children(Signal::SIGKILL);
        server.strategy_mut().collect_children(true);
        panic!("{what}: the child is still running");
    }
}

#[test]
fn signal_children_ends_children_of_an_application_that_handles_the_signal() {
    let _fork = support::fork_lock();
    // The application's handlers, as echo_server installs them.
    let signals = Signals::new([SIGINT, SIGTERM, SIGHUP]).unwrap();
    // And its serving thread blocks them (as a program that waits for
    // signals on one thread does): a child must not inherit the block.
    let stopping: SigSet = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP]
        .into_iter()
        .collect();
    let mut before = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&stopping), Some(&mut before)).unwrap();

    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        let (mut server, mut client) = server_with_a_child();
        let start = Instant::now();
        server.strategy().signal_children(sig);
        assert_children_end(&mut server, sig.as_str());
        eprintln!("{sig}: child ended and reaped in {:?}", start.elapsed());
        // The parent resets the connection of a child a signal killed.
        let mut buf = [0u8; 8];
        let read = client.read(&mut buf);
        assert!(
            matches!(&read, Err(e) if e.kind() == ErrorKind::ConnectionReset),
            "{sig}: the client read {read:?}"
        );
        server.server_close();
    }

    // SAFETY: SIG_IGN installs no handler; signal-hook's handler for
    // SIGHUP is replaced, as an application ignoring SIGHUP would have it.
    unsafe { signal(Signal::SIGHUP, SigHandler::SigIgn) }.unwrap();
    let (mut server, client) = server_with_a_child();
    server.strategy().signal_children(Signal::SIGHUP);
    assert!(
        !children_end(&mut server, Duration::from_millis(300)),
        "an ignored SIGHUP ended the child"
    );
    server.strategy().signal_children(Signal::SIGTERM);
    assert_children_end(&mut server, "SIGTERM after an ignored SIGHUP");
    drop((server, client));

    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&before), None).unwrap();
    signals.handle().close();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: SIG_DFL installs no handler: this test process gets its
        // default actions back.
        unsafe { signal(sig, SigHandler::SigDfl) }.unwrap();
    }
}

#[test]
fn ctrl_c_to_the_process_group_of_a_forking_echo_server_ends_every_process() {
    let _fork = support::fork_lock();
    // A grace period far longer than the test's bound: only the children's
    // own default SIGINT can end the in-flight request in time.
    let server = Server::start_own_group(&["--strategy", "forking", "--grace", "30"]);
    let mut client = TcpStream::connect(server.ip()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client.write_all(b"before").unwrap();
    let mut buf = [0u8; 6];
    client.read_exact(&mut buf).unwrap();
    let children = support::children_of(server.pid());
    assert_eq!(children.len(), 1, "one child mid-request: {children:?}");

    let start = Instant::now();
    server.signal_group(Signal::SIGINT);
    let read = client.read(&mut buf);
    assert!(
        matches!(&read, Err(e) if e.kind() == ErrorKind::ConnectionReset),
        "the client read {read:?}"
    );
    let group = server.pid();
    let (status, stderr, _) = server.wait(Duration::from_secs(5));
    let took = start.elapsed();
    eprintln!("Ctrl-C: echo_server exited {took:?} after the signal");
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(took < Duration::from_secs(3), "exit after {took:?}");
    let emptied = support::eventually(Duration::from_secs(2), || {
        support::process_group_members(group).is_empty()
    });
    if !emptied {
        let left = support::process_group_members(group);
        let _ = killpg(Pid::from_raw(group as i32), Signal::SIGKILL);
        panic!("left in the group: {left:?}");
    }
}
