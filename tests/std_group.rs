//! Several servers from one thread: a `ServerGroup` of TCP, UDP and Unix
//! servers under different strategies, stopped by one shutdown; and the
//! seed's own pattern, poll(2) on the servers' `fileno()`s, then
//! `handle_request()` on the ready one.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use socketserver::{Async, Echo, EchoDatagram, Sequential, Upper};
use socketserver_std::{
    HeapMultiplexed, ServerGroup, SocketStreamServer, TCPServer, Threading, ThreadingTCPServer,
    UDPServer, UnixConnection,
};

fn tcp_echo(addr: std::net::SocketAddr, message: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(message).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    back
}

#[test]
fn one_thread_serves_tcp_udp_and_unix_servers_until_one_shutdown() {
    let mut tcp =
        ThreadingTCPServer::new("127.0.0.1:0", Threading::new(Echo::<1024>)).expect("tcp");
    let mut udp = UDPServer::new("127.0.0.1:0", Sequential::new(EchoDatagram)).expect("udp");
    let path = support::temp_socket("group-unix");
    let mux = HeapMultiplexed::<UnixConnection, _, _>::new(Upper::<64>);
    let mut unix = SocketStreamServer::new(&path, mux).expect("unix");
    let (tcp_addr, udp_addr) = (*tcp.server_address(), *udp.server_address());

    let mut group = ServerGroup::new().expect("group");
    let stop = group.shutdown_handle();
    let serving = thread::spawn(move || {
        group
            .serve_forever(
                &mut [&mut tcp, &mut udp, &mut unix],
                Duration::from_millis(500),
            )
            .expect("serve_forever");
        tcp.server_close();
        udp.server_close();
        unix.server_close();
    });

    // Several clients of each, at once.
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let path = path.clone();
            thread::spawn(move || {
                let message = format!("tcp {i}");
                assert_eq!(tcp_echo(tcp_addr, message.as_bytes()), message.as_bytes());

                let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
                udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let message = format!("udp {i}");
                udp.send_to(message.as_bytes(), udp_addr).unwrap();
                let mut back = [0u8; 64];
                let n = udp.recv(&mut back).unwrap();
                assert_eq!(&back[..n], message.as_bytes());

                let mut unix = UnixStream::connect(&path).unwrap();
                unix.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut reader = BufReader::new(unix.try_clone().unwrap());
                for round in 0..3 {
                    unix.write_all(format!("unix {i} {round}\n").as_bytes())
                        .unwrap();
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    assert_eq!(line, format!("UNIX {i} {round}\n"));
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client");
    }

    // One shutdown stops the whole group, at once.
    let started = Instant::now();
    stop.shutdown();
    serving.join().expect("group thread");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the group stopped after {:?}",
        started.elapsed()
    );
    let _ = std::fs::remove_file(&path);
}

/// Python's advice for several servers in one thread, as the seed gives it:
/// `select()` on the servers, then `handle_request()` on the ready one.
#[test]
fn the_seeds_pattern_poll_on_fileno_then_handle_request_works() {
    let mut a = TCPServer::new("127.0.0.1:0", Sequential::new(Async(Upper::<64>))).expect("a");
    let mut b = TCPServer::new("127.0.0.1:0", Sequential::new(Echo::<1024>)).expect("b");
    let (a_addr, b_addr) = (*a.server_address(), *b.server_address());
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    let serving = thread::spawn(move || {
        let mut handled = 0;
        while !stopping.load(Ordering::Relaxed) {
            // `select([a, b])`: the listening sockets (`fileno()`).
            let (ready_a, ready_b) = {
                let mut fds = [
                    PollFd::new(a.socket().expect("open").as_fd(), PollFlags::POLLIN),
                    PollFd::new(b.socket().expect("open").as_fd(), PollFlags::POLLIN),
                ];
                nix::poll::poll(&mut fds, PollTimeout::from(100u16)).expect("poll");
                (fds[0].any().unwrap_or(false), fds[1].any().unwrap_or(false))
            };
            if ready_a {
                a.handle_request().expect("a");
                handled += 1;
            }
            if ready_b {
                b.handle_request().expect("b");
                handled += 1;
            }
        }
        a.server_close();
        b.server_close();
        handled
    });
    for i in 0..3 {
        assert_eq!(
            tcp_echo(b_addr, format!("b{i}").as_bytes()),
            format!("b{i}").as_bytes()
        );
        assert_eq!(
            tcp_echo(a_addr, format!("a{i}\n").as_bytes()),
            format!("A{i}\n").as_bytes()
        );
    }
    stop.store(true, Ordering::Relaxed);
    assert_eq!(serving.join().expect("loop"), 6);
}
