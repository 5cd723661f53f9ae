//! A handler that stops its server under `Forking`: the child's request
//! reaches the parent's `serve_forever`, which returns at once (its poll
//! interval is a minute); the child's own call returns without waiting; the
//! children still in flight finish as `block_on_close` says; nothing is
//! left behind. Every test here forks, so each holds the fork lock.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::sync::{Arc, OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use socketserver::{
    Connection, DatagramRequest, DatagramRequestHandler, Echo, Error, Handled, HandlerError,
    StreamRequest, StreamRequestHandler,
};
use socketserver_std::{
    Forking, ForkingTCPServer, ForkingUDPServer, ShutdownHandle, Threading, ThreadingTCPServer,
};
use support::behaviour;

/// Long enough that only the wake-up can stop the loop within the test's bounds.
const POLL_INTERVAL: Duration = Duration::from_secs(60);
/// How long the loop may take to stop after the child asked.
const STOP_BOUND: Duration = Duration::from_secs(1);

/// The server's handle, given to the handler once the server exists.
type Stop = Arc<OnceLock<ShutdownHandle>>;

/// Echoes lines. `QUIT` stops the server from the child serving it and
/// answers `BYE`; `QUIT-THREAD` does the same from a thread the handler
/// starts in the child (which is not the thread that forked it).
#[derive(Clone)]
struct Quit {
    stop: Stop,
}

impl<C: Connection> StreamRequestHandler<C> for Quit {
    fn handle(&mut self, req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        let stop = self.stop.get().expect("handle set before serving").clone();
        let mut line = [0u8; 64];
        loop {
            let n = req.read_line(&mut line)?;
            match &line[..n] {
                b"" => return Ok(()),
                b"QUIT\n" => stop.shutdown(),
                b"QUIT-THREAD\n" => thread::spawn(move || stop.shutdown())
                    .join()
                    .expect("shutdown thread"),
                other => {
                    req.write_all(other)?;
                    continue;
                }
            }
            return req.write_all(b"BYE\n");
        }
    }
}

fn line(stream: &mut TcpStream, send: &str) -> String {
    stream.write_all(send.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\n") {
        match stream.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            other => panic!("reply to {send:?}: {other:?} after {got:?}"),
        }
    }
    String::from_utf8(got).unwrap()
}

fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
}

/// Kills this process's children if the test fails: a child that hangs
/// (say, one waiting in `shutdown()` for a loop it is not) would outlive
/// the test otherwise.
struct KillChildrenOnPanic;

impl Drop for KillChildrenOnPanic {
    fn drop(&mut self) {
        if thread::panicking() {
            for pid in support::children_of(std::process::id()) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
    }
}

/// Descriptors and child processes (threads vary with the test harness's
/// own; the serving threads are joined).
fn baseline() -> (usize, usize) {
    (support::open_fds(), support::children())
}

#[test]
fn a_quit_from_a_forked_child_stops_serve_forever_while_another_client_is_served() {
    let _fork = support::fork_lock();
    let _cleanup = KillChildrenOnPanic;
    let base = baseline();
    for command in ["QUIT\n", "QUIT-THREAD\n"] {
        let stop = Stop::default();
        let mut server = ForkingTCPServer::new(
            "127.0.0.1:0",
            Forking::new(Quit {
                stop: Arc::clone(&stop),
            }),
        )
        .unwrap();
        stop.set(server.shutdown_handle()).unwrap();
        let addr = *server.server_address();
        let (stopped_tx, stopped_rx) = mpsc::channel();
        let serving = thread::spawn(move || {
            server.serve_forever(POLL_INTERVAL).unwrap();
            stopped_tx.send(Instant::now()).unwrap();
            // block_on_close: waits for the child still serving a client.
            server.server_close();
        });

        // A client in flight, in a child of its own.
        let mut stays = connect(addr);
        assert_eq!(line(&mut stays, "hello\n"), "hello\n");

        // Another child stops the server; its own call returns at once.
        let mut quits = connect(addr);
        let asked = Instant::now();
        assert_eq!(line(&mut quits, command), "BYE\n", "{command:?}");
        let stopped = stopped_rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("{command:?}: serve_forever still running after 5 s"));
        let latency = stopped.saturating_duration_since(asked);
        eprintln!("{command:?}: serve_forever returned {latency:?} after the request");
        assert!(
            latency < STOP_BOUND,
            "{command:?}: stopped after {latency:?}"
        );
        drop(quits);

        // A normal shutdown: the request in flight is still served, and
        // server_close waits for it.
        assert_eq!(line(&mut stays, "still\n"), "still\n");
        thread::sleep(Duration::from_millis(100));
        assert!(
            !serving.is_finished(),
            "{command:?}: server_close did not wait for the child in flight"
        );
        // The listening socket is closed: the child serving `stays` closed
        // its copy after the fork, so a new client is refused at once, not
        // queued for a listener only children hold.
        let refused = TcpStream::connect_timeout(&addr, Duration::from_secs(2));
        assert_eq!(
            refused.as_ref().map_err(std::io::Error::kind).err(),
            Some(std::io::ErrorKind::ConnectionRefused),
            "{command:?}: a client connected after server_close: {refused:?}"
        );
        stays.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        stays.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        serving.join().unwrap();
    }
    assert!(
        support::eventually(Duration::from_secs(5), || baseline() == base),
        "descriptors, children: {:?} vs {base:?}",
        baseline()
    );
}

/// Calls `shutdown()`, from a thread of the child, on the handle of a
/// server that is not this one, then answers `BYE`.
#[derive(Clone)]
struct StopOther {
    other: ShutdownHandle,
}

impl<C: Connection> StreamRequestHandler<C> for StopOther {
    fn handle(&mut self, req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        let other = self.other.clone();
        thread::spawn(move || other.shutdown())
            .join()
            .expect("shutdown thread");
        req.write_all(b"BYE\n")
    }
}

#[test]
fn another_servers_handle_never_waits_in_a_forked_child() {
    let _fork = support::fork_lock();
    let mut other = ThreadingTCPServer::new("127.0.0.1:0", Threading::new(Echo::<64>)).unwrap();
    let other_addr = *other.server_address();
    let other_stop = other.shutdown_handle();
    let other_serving = thread::spawn(move || {
        other.serve_forever(POLL_INTERVAL).unwrap();
        other.server_close();
    });
    // Its loop runs (it answers) before the fork copies it.
    behaviour::echo_round_trip(&behaviour::tcp(other_addr)).unwrap();
    let mut server = ForkingTCPServer::new(
        "127.0.0.1:0",
        Forking::new(StopOther {
            other: other_stop.clone(),
        }),
    )
    .unwrap();
    // After the server: dropped before it, so its close finds no hung child.
    let _cleanup = KillChildrenOnPanic;
    let mut client = connect(*server.server_address());
    assert_eq!(server.handle_request().unwrap(), Handled::Request);
    // The child's copy of the other server is not its loop: the call
    // returns (it used to wait forever) and stops nothing.
    let mut bye = String::new();
    client.read_to_string(&mut bye).unwrap();
    assert_eq!(bye, "BYE\n");
    server.server_close();
    behaviour::echo_round_trip(&behaviour::tcp(other_addr)).unwrap();
    other_stop.shutdown();
    other_serving.join().unwrap();
}

/// Echoes datagrams; `QUIT` asks the server to stop with `request()` (the
/// non-blocking call) and answers whether the request went through.
#[derive(Clone)]
struct QuitDatagram {
    stop: Stop,
}

impl<A: std::fmt::Debug> DatagramRequestHandler<A> for QuitDatagram {
    fn handle(&mut self, req: &mut DatagramRequest<'_, A>) -> Result<(), HandlerError> {
        let packet = req.packet();
        if packet != b"QUIT" {
            return req.write_all(packet);
        }
        let stop = self.stop.get().expect("handle set before serving");
        req.write_all(if stop.request() { b"BYE" } else { b"NOT SENT" })
    }
}

#[test]
fn a_datagram_handler_stops_a_forking_udp_server_from_its_child() {
    let _fork = support::fork_lock();
    let _cleanup = KillChildrenOnPanic;
    let base = baseline();
    let stop = Stop::default();
    let mut server = ForkingUDPServer::new(
        "127.0.0.1:0",
        Forking::new(QuitDatagram {
            stop: Arc::clone(&stop),
        }),
    )
    .unwrap();
    stop.set(server.shutdown_handle()).unwrap();
    let addr = *server.server_address();
    let (stopped_tx, stopped_rx) = mpsc::channel();
    let serving = thread::spawn(move || {
        server.serve_forever(POLL_INTERVAL).unwrap();
        stopped_tx.send(Instant::now()).unwrap();
        server.server_close();
    });
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 16];
    client.send_to(b"ping", addr).unwrap();
    let n = client.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");

    let asked = Instant::now();
    client.send_to(b"QUIT", addr).unwrap();
    let n = client.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"BYE");
    let stopped = stopped_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("serve_forever still running after 5 s");
    let latency = stopped.saturating_duration_since(asked);
    eprintln!("datagram: serve_forever returned {latency:?} after the request");
    assert!(latency < STOP_BOUND, "stopped after {latency:?}");
    serving.join().unwrap();
    drop((client, stop));
    assert!(
        support::eventually(Duration::from_secs(5), || baseline() == base),
        "descriptors, children: {:?} vs {base:?}",
        baseline()
    );
}
