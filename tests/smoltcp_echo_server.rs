//! `echo_server --transport smoltcp-tcp|smoltcp-udp` as a process, attached
//! to a TAP device in a private network namespace, driven by the behaviour
//! suite from the kernel side.

#[path = "support/netns.rs"]
mod netns;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, TcpPacket};
use support::behaviour;

const TAP_ARGS: [&str; 4] = ["--tap", "tap0", "--ip", "192.168.69.1/24"];

/// The server process; killed if a check fails before it is stopped.
struct Server(Option<Child>);

impl Server {
    fn start(transport: &str, strategy: &str) -> (Self, SocketAddr) {
        Self::start_with(transport, strategy, &[])
    }

    /// `start` with more flags after the TAP ones.
    fn start_with(transport: &str, strategy: &str, extra: &[&str]) -> (Self, SocketAddr) {
        let mut child = Command::new(support::echo_server_bin())
            .args(["--transport", transport, "--strategy", strategy])
            .args(TAP_ARGS)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn echo_server");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let server = Self(Some(child));
        assert!(read.is_ok_and(|n| n > 0), "no first line from echo_server");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("first line {line:?}"));
        (server, addr)
    }

    /// Sends SIGTERM and returns at once: the graceful shutdown begins.
    fn terminate(&self) {
        if let Some(child) = &self.0 {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        }
    }

    /// SIGTERM, then the exit status within 5 s.
    fn stop(mut self) -> i32 {
        let mut child = self.0.take().expect("running");
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code().unwrap_or(-1);
            }
            if start.elapsed() > Duration::from_secs(5) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("echo_server did not stop within 5 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn in_tap_netns(test: &str, f: impl FnOnce() + Send + 'static) {
    if !netns::require_tap_or_skip(test) {
        return;
    }
    netns::in_new_netns(move || {
        netns::add_tap("tap0", "192.168.69.100/24").unwrap_or_else(|e| panic!("{e}"));
        f();
    });
}

fn check(what: &str, result: behaviour::Check) {
    if let Err(e) = result {
        panic!("{what}: {e}");
    }
}

fn tcp_contract(strategy: &'static str) {
    in_tap_netns(strategy, move || {
        let (server, addr) = Server::start("smoltcp-tcp", strategy);
        assert_eq!(addr, "192.168.69.1:7".parse().unwrap());
        let target = behaviour::tcp(addr);
        check("round trip", behaviour::echo_round_trip(&target));
        check("1 MiB", behaviour::echo_large(&target, 1 << 20));
        check("reset", behaviour::reset_mid_stream(&target));
        if strategy == "multiplexed" {
            let served = behaviour::concurrent_open(&target, 8, Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(served >= 8, "multiplexed served {served} of 8 at once");
        }
        // Round trips in lockstep: each reply must leave as soon as its
        // request arrived, not at the waiter's next timer (before that was
        // fixed, multiplexed: 1.1 s for 200; after: 0.16 s).
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let started = Instant::now();
        for i in 0..200u32 {
            std::io::Write::write_all(&mut stream, &i.to_be_bytes()).unwrap();
            let mut back = [0u8; 4];
            std::io::Read::read_exact(&mut stream, &mut back).unwrap();
            assert_eq!(back, i.to_be_bytes());
        }
        let lockstep = started.elapsed();
        println!("echo_server {strategy}: 200 lockstep round trips in {lockstep:?}");
        assert!(
            lockstep < Duration::from_millis(600),
            "{strategy}: 200 round trips took {lockstep:?}"
        );
        drop(stream);
        let burst = behaviour::concurrent_round_trips(&target, 64, b"burst\n")
            .unwrap_or_else(|e| panic!("64-client burst: {e}"));
        println!(
            "echo_server {strategy}: 64-client burst served in {:?}",
            burst.elapsed
        );
        assert!(burst.elapsed < Duration::from_secs(30));
        assert_eq!(server.stop(), 0, "exit status after SIGTERM");
    });
}

#[test]
fn echo_server_smoltcp_tcp_sync() {
    tcp_contract("sync");
}

#[test]
fn echo_server_smoltcp_tcp_multiplexed() {
    tcp_contract("multiplexed");
}

#[test]
fn echo_server_smoltcp_udp() {
    in_tap_netns("echo_server_smoltcp_udp", || {
        // `multiplexed` serves each datagram inline, as `sync`.
        for strategy in ["sync", "multiplexed"] {
            let (server, addr) = Server::start("smoltcp-udp", strategy);
            let target = behaviour::udp(addr);
            check("echo", behaviour::datagram_echo(&target));
            check("truncation", behaviour::datagram_truncation(&target, 8192));
            assert_eq!(server.stop(), 0, "{strategy}");
        }
    });
}

#[test]
fn echo_server_smoltcp_errors() {
    in_tap_netns("echo_server_smoltcp_errors", || {
        let status = |args: &[&str]| {
            Command::new(support::echo_server_bin())
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run echo_server")
                .code()
        };
        let tcp = ["--transport", "smoltcp-tcp"];
        for strategy in ["threading", "forking"] {
            let args = [&tcp[..], &["--strategy", strategy], &TAP_ARGS[..]].concat();
            assert_eq!(status(&args), Some(2), "--strategy {strategy} with smoltcp");
        }
        let too_many = [&tcp[..], &TAP_ARGS[..], &["--strategy", "multiplexed"]].concat();
        let too_many = [&too_many[..], &["--max-connections", "17"]].concat();
        assert_eq!(
            status(&too_many),
            Some(2),
            "--max-connections beyond the pool"
        );
        assert_eq!(status(&tcp), Some(2), "no --tap/--ip");
        let bad_ip = [&tcp[..], &["--tap", "tap0", "--ip", "192.168.69.1"]].concat();
        assert_eq!(status(&bad_ip), Some(2), "--ip without prefix");
        let bad_mac = [&tcp[..], &TAP_ARGS[..], &["--mac", "01:00:00:00:00:01"]].concat();
        assert_eq!(status(&bad_mac), Some(2), "multicast --mac");
        let missing = [&tcp[..], &["--tap", "nosuch0", "--ip", "192.168.69.1/24"]].concat();
        assert_eq!(
            status(&missing),
            Some(1),
            "a TAP device that does not exist"
        );
        let std_pcap = ["--transport", "tcp", "--pcap", "echo.pcap"];
        assert_eq!(status(&std_pcap), Some(2), "--pcap with an OS transport");
        // A capture file that cannot be created: one line naming it, exit 1.
        let dir = PcapDir::new();
        let bad = dir.join("no-such-dir").join("echo.pcap");
        let bad_text = bad.to_str().expect("UTF-8 temp path");
        let out = Command::new(support::echo_server_bin())
            .args(tcp)
            .args(TAP_ARGS)
            .args(["--pcap", bad_text])
            .stdin(Stdio::null())
            .output()
            .expect("run echo_server");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "uncreatable --pcap: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
        assert!(
            stderr.contains(bad_text) && stderr.contains("os error"),
            "names the path and the OS error: {stderr:?}"
        );
        assert!(out.stdout.is_empty(), "no `listening on` line");
    });
}

/// A fresh directory for capture files, under /tmp, removed on drop (also
/// when a check fails).
struct PcapDir(PathBuf);

impl PcapDir {
    fn new() -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("socketserver-pcap-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        Self(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for PcapDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One TCP segment of a capture: addresses, ports, sequence number, payload.
struct Segment {
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    seq: u32,
    payload: Vec<u8>,
}

/// Parses a pcap file: checks the global header (either byte order, link
/// type Ethernet) and returns how many records it holds and the TCP-over-IPv4
/// segments among them.
fn read_pcap(path: &Path) -> (usize, Vec<Segment>) {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(data.len() >= 24, "pcap shorter than its global header");
    // smoltcp writes in the host's byte order: accept either.
    let big_endian = match &data[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] => false,
        [0xa1, 0xb2, 0xc3, 0xd4] => true,
        other => panic!("not a pcap file: magic {other:02x?}"),
    };
    let u32_at = |d: &[u8], at: usize| {
        let bytes: [u8; 4] = d[at..at + 4].try_into().expect("4 bytes");
        if big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        }
    };
    // Version 2.4: two u16 fields, major then minor, in the same byte order.
    let version = [data[4], data[5], data[6], data[7]];
    let expected = if big_endian {
        [0, 2, 0, 4]
    } else {
        [2, 0, 4, 0]
    };
    assert_eq!(version, expected, "pcap version 2.4");
    assert_eq!(u32_at(&data, 20), 1, "link type must be Ethernet (1)");
    let (mut records, mut segments, mut at) = (0, Vec::new(), 24);
    while at < data.len() {
        assert!(at + 16 <= data.len(), "truncated record header at {at}");
        let captured = u32_at(&data, at + 8) as usize;
        let original = u32_at(&data, at + 12) as usize;
        assert!(captured <= original, "record at {at}: captured > original");
        let start = at + 16;
        assert!(start + captured <= data.len(), "truncated record at {at}");
        records += 1;
        segments.extend(tcp_segment(&data[start..start + captured]));
        at = start + captured;
    }
    (records, segments)
}

/// The TCP segment in an Ethernet frame, if it carries one over IPv4.
fn tcp_segment(frame: &[u8]) -> Option<Segment> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != IpProtocol::Tcp {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    Some(Segment {
        src: (ip.src_addr(), tcp.src_port()),
        dst: (ip.dst_addr(), tcp.dst_port()),
        seq: tcp.seq_number().0 as u32,
        payload: tcp.payload().to_vec(),
    })
}

/// The bytes one direction carried: segments from `src` to `dst` in
/// sequence order, retransmissions counted once.
fn stream(segments: &[Segment], src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) -> Vec<u8> {
    let mut parts: Vec<(u32, &[u8])> = segments
        .iter()
        .filter(|s| s.src == src && s.dst == dst && !s.payload.is_empty())
        .map(|s| (s.seq, &s.payload[..]))
        .collect();
    parts.sort_by_key(|&(seq, _)| seq);
    parts.dedup_by_key(|&mut (seq, _)| seq);
    parts.into_iter().flat_map(|(_, p)| p.to_vec()).collect()
}

#[test]
fn echo_server_smoltcp_pcap() {
    in_tap_netns("echo_server_smoltcp_pcap", || {
        let dir = PcapDir::new();
        let path = dir.join("echo.pcap");
        let path_text = path.to_str().expect("UTF-8 temp path");
        let (server, addr) = Server::start_with("smoltcp-tcp", "sync", &["--pcap", path_text]);
        let probe = b"pcap probe: socketserver over smoltcp\n";
        let mut client = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        let local = client.local_addr().expect("local address");
        client.write_all(probe).expect("send probe");
        let mut reply = vec![0; probe.len()];
        client.read_exact(&mut reply).expect("echo of the probe");
        assert_eq!(&reply[..], &probe[..]);
        client.shutdown(Shutdown::Write).expect("half-close");
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).expect("EOF");
        drop(client);
        assert_eq!(server.stop(), 0, "exit status after SIGTERM");

        let (records, segments) = read_pcap(&path);
        assert!(records > 0, "no records in the capture");
        let as_v4 = |a: SocketAddr| match a {
            SocketAddr::V4(v4) => (*v4.ip(), v4.port()),
            SocketAddr::V6(v6) => panic!("IPv6 address {v6}"),
        };
        let (client_end, server_end) = (as_v4(local), as_v4(addr));
        let received = stream(&segments, client_end, server_end);
        let sent = stream(&segments, server_end, client_end);
        println!(
            "capture: {records} records, {} TCP segments; {} bytes to port {}, {} bytes from it",
            segments.len(),
            received.len(),
            server_end.1,
            sent.len()
        );
        assert_eq!(received, probe, "frames the stack received: the probe");
        assert_eq!(sent, probe, "frames the stack sent: the echo");
    });
}

/// How a cut client's connection ended, read until it ends (at most 5 s).
fn ending(client: &mut TcpStream) -> Result<(), std::io::Error> {
    client.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = [0u8; 256];
    loop {
        match client.read(&mut buf)? {
            0 => return Ok(()),
            _ => continue,
        }
    }
}

/// Clients still mid-request when the grace period ends are cut: each must
/// see a reset (ECONNRESET), none a clean EOF that would pass for a
/// complete reply. A client that finished before the signal still gets its
/// FIN after every byte.
fn cut_at_grace_deadline(strategy: &'static str) {
    in_tap_netns(strategy, move || {
        let (server, addr) = Server::start_with("smoltcp-tcp", strategy, &["--grace", "1"]);
        let target = behaviour::tcp(addr);
        check("complete request", behaviour::echo_round_trip(&target));
        // Under `sync` the first is served and the others wait in the pool;
        // under `multiplexed` all are served. None sends its EOF.
        let mut cut: Vec<TcpStream> = (0..3)
            .map(|i| {
                let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                    .unwrap_or_else(|e| panic!("connect #{i}: {e}"));
                c.write_all(b"partial request").expect("send");
                c
            })
            .collect();
        let mut echo = [0u8; 15];
        cut[0]
            .read_exact(&mut echo)
            .expect("the first is being served");
        let signalled = Instant::now();
        server.terminate();
        for (i, client) in cut.iter_mut().enumerate() {
            match ending(client) {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
                Ok(()) => panic!("{strategy}: cut client #{i} saw a clean EOF"),
                Err(e) => panic!("{strategy}: cut client #{i}: {e} (want a reset)"),
            }
        }
        let after = signalled.elapsed();
        println!("echo_server {strategy}: 3 cut clients reset {after:?} after SIGTERM (--grace 1)");
        assert!(
            after < Duration::from_secs(3),
            "cut {after:?} after SIGTERM"
        );
        // Once shutdown is requested nobody is accepted, so the waiting
        // clients evict no one: the requests get their whole grace period.
        assert!(
            after >= Duration::from_millis(900),
            "cut before the grace period ended"
        );
        assert_eq!(server.stop(), 0, "exit status after SIGTERM");
    });
}

#[test]
fn echo_server_smoltcp_cut_is_a_reset_sync() {
    cut_at_grace_deadline("sync");
}

#[test]
fn echo_server_smoltcp_cut_is_a_reset_multiplexed() {
    cut_at_grace_deadline("multiplexed");
}
