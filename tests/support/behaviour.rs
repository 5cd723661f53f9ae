//! The behaviour suite: client-side checks written once and run against every
//! backend and strategy ("same handler everywhere", proven).
//!
//! Each check talks to *a server* through a [`StreamTarget`] or a
//! [`DatagramTarget`]: something that opens a fresh client connection or
//! socket. The server under test must run an echo handler (core's `Echo` /
//! `EchoDatagram`, or `echo_server`). The checks use only std sockets and
//! `socket2`, so they run against the std backend on loopback, against a Unix
//! path, and against smoltcp over TAP alike.
//!
//! Use it from an integration test with
//! `#[path = "support/behaviour.rs"] mod behaviour;` (or through
//! `mod support;`, whose `mod.rs` includes it), then:
//!
//! ```ignore
//! let target = behaviour::tcp(addr);            // or unix(path), or a closure
//! behaviour::echo_round_trip(&target)?;
//! behaviour::echo_large(&target, 1 << 20)?;     // 1 MiB, integrity checked
//! behaviour::reset_mid_stream(&target)?;        // then still serving
//! behaviour::garbage_then_serving(&target)?;
//! let served = behaviour::concurrent_open(&target, 16, Duration::from_secs(2))?;
//! let d = behaviour::udp(server_addr);
//! behaviour::datagram_echo(&d)?;
//! behaviour::datagram_truncation(&d, 8192)?;
//! ```
//!
//! Every check returns `Err(String)` naming what went wrong rather than
//! panicking, so the caller adds context (`.unwrap_or_else(|e| panic!(...))`).
//! Every wait is bounded by [`IO_TIMEOUT`].
#![allow(dead_code)] // each test crate uses a subset

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// The bound on every single read, write or connect of a check.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// What a check returns: `Err` says what went wrong.
pub type Check<T = ()> = Result<T, String>;

/// A client-side stream: TCP or Unix.
pub trait ClientStream: Read + Write + Send {
    /// Half-closes the sending side, so the server reads EOF.
    fn shutdown_write(&self) -> io::Result<()>;
    /// Closes abruptly: an RST for TCP (SO_LINGER 0), a plain close for Unix.
    fn reset(self: Box<Self>);
    /// A second handle to the same connection, for a concurrent reader.
    fn try_clone_box(&self) -> io::Result<Box<dyn ClientStream>>;
    /// Bounds each later read.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl ClientStream for TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
    fn reset(self: Box<Self>) {
        let _ = socket2::SockRef::from(&*self).set_linger(Some(Duration::ZERO));
    }
    fn try_clone_box(&self) -> io::Result<Box<dyn ClientStream>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
}

impl ClientStream for UnixStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
    fn reset(self: Box<Self>) {}
    fn try_clone_box(&self) -> io::Result<Box<dyn ClientStream>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, timeout)
    }
}

/// Opens a fresh client connection to the server under test.
pub trait StreamTarget: Sync {
    /// A new connection, with read and write timeouts already set.
    fn connect(&self) -> io::Result<Box<dyn ClientStream>>;
}

impl<F: Fn() -> io::Result<Box<dyn ClientStream>> + Sync> StreamTarget for F {
    fn connect(&self) -> io::Result<Box<dyn ClientStream>> {
        self()
    }
}

/// A target that connects over TCP to `addr`.
pub fn tcp(addr: SocketAddr) -> impl StreamTarget {
    move || -> io::Result<Box<dyn ClientStream>> {
        let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(Box::new(s))
    }
}

/// A target that connects to the Unix stream socket at `path`.
pub fn unix(path: impl Into<PathBuf>) -> impl StreamTarget {
    let path = path.into();
    move || -> io::Result<Box<dyn ClientStream>> {
        let s = UnixStream::connect(&path)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(Box::new(s))
    }
}

/// A client-side datagram socket, connected to the server under test.
pub trait ClientDatagram: Send {
    /// Sends one datagram to the server.
    fn send(&self, data: &[u8]) -> io::Result<usize>;
    /// Receives one datagram (bounded by [`IO_TIMEOUT`] or the socket's timeout).
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Sets the receive timeout.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl ClientDatagram for UdpSocket {
    fn send(&self, data: &[u8]) -> io::Result<usize> {
        UdpSocket::send(self, data)
    }
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        UdpSocket::recv(self, buf)
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UdpSocket::set_read_timeout(self, timeout)
    }
}

/// A bound Unix datagram client that removes its path when dropped.
pub struct BoundUnixDatagram {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Drop for BoundUnixDatagram {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl ClientDatagram for BoundUnixDatagram {
    fn send(&self, data: &[u8]) -> io::Result<usize> {
        self.socket.send(data)
    }
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.recv(buf)
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket.set_read_timeout(timeout)
    }
}

/// Opens a fresh client datagram socket aimed at the server under test.
pub trait DatagramTarget: Sync {
    /// A new socket, connected to the server, with a read timeout set.
    fn socket(&self) -> io::Result<Box<dyn ClientDatagram>>;
}

impl<F: Fn() -> io::Result<Box<dyn ClientDatagram>> + Sync> DatagramTarget for F {
    fn socket(&self) -> io::Result<Box<dyn ClientDatagram>> {
        self()
    }
}

/// A target that sends UDP datagrams to `addr` from an ephemeral port.
pub fn udp(addr: SocketAddr) -> impl DatagramTarget {
    move || -> io::Result<Box<dyn ClientDatagram>> {
        let local: SocketAddr = if addr.is_ipv4() {
            "0.0.0.0:0".parse().map_err(io::Error::other)?
        } else {
            "[::]:0".parse().map_err(io::Error::other)?
        };
        let s = UdpSocket::bind(local)?;
        s.connect(addr)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        Ok(Box::new(s))
    }
}

/// A target that sends to the Unix datagram socket at `path` from a client
/// bound to a fresh path of its own (an unbound sender gets no reply).
pub fn unix_datagram(path: impl Into<PathBuf>) -> impl DatagramTarget {
    let path = path.into();
    move || -> io::Result<Box<dyn ClientDatagram>> {
        let client_path = unique_path(&path);
        let socket = UnixDatagram::bind(&client_path)?;
        let bound = BoundUnixDatagram {
            socket,
            path: client_path,
        };
        bound.socket.connect(&path)?;
        bound.socket.set_read_timeout(Some(IO_TIMEOUT))?;
        Ok(Box::new(bound))
    }
}

fn unique_path(beside: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = format!("client-{}-{n}.sock", std::process::id());
    beside.with_file_name(name)
}

/// Deterministic test bytes: every byte depends on its offset and `seed`,
/// so a dropped, duplicated or reordered chunk is detected.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

fn io_err(what: &str) -> impl FnOnce(io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Reads until EOF, failing after [`IO_TIMEOUT`] of silence.
pub fn read_to_eof(stream: &mut dyn ClientStream) -> Check<Vec<u8>> {
    let mut out = Vec::new();
    stream
        .read_to_end(&mut out)
        .map_err(io_err("reading to EOF"))?;
    Ok(out)
}

/// One small echo: connect, send, read the reply *before* EOF (the server
/// must echo as bytes arrive), then half-close and expect EOF.
pub fn echo_round_trip(target: &dyn StreamTarget) -> Check {
    let mut s = target.connect().map_err(io_err("connect"))?;
    let msg = b"Hello, world";
    s.write_all(msg).map_err(io_err("send"))?;
    let mut reply = [0u8; 12];
    s.read_exact(&mut reply)
        .map_err(io_err("reply before EOF (is the echo incremental?)"))?;
    if &reply != msg {
        return Err(format!("echo mismatch: {reply:?}"));
    }
    s.shutdown_write().map_err(io_err("half-close"))?;
    let rest = read_to_eof(&mut *s)?;
    if !rest.is_empty() {
        return Err(format!("{} unexpected bytes before EOF", rest.len()));
    }
    Ok(())
}

/// Echoes `len` bytes of [`pattern`] while reading concurrently (so neither
/// side's buffers fill up), then checks every byte and the EOF after them.
pub fn echo_large(target: &dyn StreamTarget, len: usize) -> Check {
    let s = target.connect().map_err(io_err("connect"))?;
    let mut reader = s.try_clone_box().map_err(io_err("clone"))?;
    let data = Arc::new(pattern(len, len as u32));
    let sent = Arc::clone(&data);
    let mut writer = s;
    let sender = thread::spawn(move || -> Check {
        for chunk in sent.chunks(16 * 1024) {
            writer.write_all(chunk).map_err(io_err("send"))?;
        }
        writer.shutdown_write().map_err(io_err("half-close"))
    });
    let got = read_to_eof(&mut *reader);
    sender
        .join()
        .map_err(|_| "sender thread panicked".to_string())??;
    let got = got?;
    if got.len() != data.len() {
        return Err(format!("echoed {} of {} bytes", got.len(), data.len()));
    }
    if let Some(at) = got.iter().zip(data.iter()).position(|(a, b)| a != b) {
        return Err(format!("echo differs at byte {at}"));
    }
    Ok(())
}

/// Sends part of a request, resets the connection (RST on TCP), then checks
/// that the server still serves a new client.
pub fn reset_mid_stream(target: &dyn StreamTarget) -> Check {
    let mut s = target.connect().map_err(io_err("connect"))?;
    s.write_all(&pattern(64 * 1024, 7))
        .map_err(io_err("send"))?;
    s.reset();
    echo_round_trip(target).map_err(|e| format!("after a reset: {e}"))
}

/// Sends bytes that are no text at all (NULs, invalid UTF-8, all 256 values),
/// expects them back unchanged, then checks that the server still serves.
pub fn garbage_then_serving(target: &dyn StreamTarget) -> Check {
    let mut s = target.connect().map_err(io_err("connect"))?;
    let mut garbage: Vec<u8> = (0..=255u8).collect();
    garbage.extend_from_slice(&[0xff, 0xfe, 0x00, 0xc3, 0x28, b'\n', b'\r', 0]);
    s.write_all(&garbage).map_err(io_err("send"))?;
    s.shutdown_write().map_err(io_err("half-close"))?;
    let back = read_to_eof(&mut *s)?;
    if back != garbage {
        return Err(format!(
            "garbage not echoed intact ({} bytes back)",
            back.len()
        ));
    }
    echo_round_trip(target).map_err(|e| format!("after garbage: {e}"))
}

/// A client that connects and vanishes without sending: the server must go on.
pub fn silent_client_then_serving(target: &dyn StreamTarget) -> Check {
    let s = target.connect().map_err(io_err("connect"))?;
    drop(s);
    echo_round_trip(target).map_err(|e| format!("after a silent client: {e}"))
}

/// Opens `n` connections and keeps them all open, then checks on each one in
/// turn that a byte comes back within `patience`. Returns how many were
/// served while all were open: `n` for a concurrent server, 1 for a server
/// that serves one connection at a time.
pub fn concurrent_open(target: &dyn StreamTarget, n: usize, patience: Duration) -> Check<usize> {
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        conns.push(target.connect().map_err(|e| format!("connect #{i}: {e}"))?);
    }
    let served = thread::scope(|scope| {
        let handles: Vec<_> = conns
            .iter_mut()
            .enumerate()
            .map(|(i, c)| {
                scope.spawn(move || {
                    let byte = [i as u8];
                    if c.set_read_timeout(Some(patience)).is_err() || c.write_all(&byte).is_err() {
                        return false;
                    }
                    let mut got = [0u8; 1];
                    matches!(c.read(&mut got), Ok(1) if got == byte)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(false))
            .filter(|ok| *ok)
            .count()
    });
    Ok(served)
}

/// The timing of [`concurrent_round_trips`].
#[derive(Debug, Clone)]
pub struct Concurrency {
    /// From the common start to the last reply.
    pub elapsed: Duration,
    /// Each client's time from its start to its full reply, in client order.
    pub latencies: Vec<Duration>,
}

/// Starts `n` clients at once (a barrier); each sends `msg`, half-closes and
/// reads the whole echo. With a handler that takes time T per request, a
/// concurrent server finishes in about T and a serial one in about n × T.
pub fn concurrent_round_trips(
    target: &dyn StreamTarget,
    n: usize,
    msg: &[u8],
) -> Check<Concurrency> {
    let barrier = Barrier::new(n);
    let start = Instant::now();
    let results: Vec<Check<Duration>> = thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                scope.spawn(|| -> Check<Duration> {
                    barrier.wait();
                    let t0 = Instant::now();
                    let mut s = target.connect().map_err(io_err("connect"))?;
                    s.write_all(msg).map_err(io_err("send"))?;
                    s.shutdown_write().map_err(io_err("half-close"))?;
                    let back = read_to_eof(&mut *s)?;
                    if back != msg {
                        return Err(format!(
                            "reply {:?} differs",
                            String::from_utf8_lossy(&back)
                        ));
                    }
                    Ok(t0.elapsed())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("client panicked".into())))
            .collect()
    });
    let elapsed = start.elapsed();
    let latencies = results.into_iter().collect::<Check<Vec<_>>>()?;
    Ok(Concurrency { elapsed, latencies })
}

/// One datagram echoed back; then an empty datagram answered by an empty one.
pub fn datagram_echo(target: &dyn DatagramTarget) -> Check {
    let s = target.socket().map_err(io_err("socket"))?;
    let msg = b"Hello, world";
    s.send(msg).map_err(io_err("send"))?;
    let mut buf = vec![0u8; 65536];
    let n = s.recv(&mut buf).map_err(io_err("reply"))?;
    if &buf[..n] != msg {
        return Err(format!(
            "reply {:?} differs",
            String::from_utf8_lossy(&buf[..n])
        ));
    }
    s.send(&[]).map_err(io_err("send empty"))?;
    let n = s.recv(&mut buf).map_err(io_err("reply to empty"))?;
    if n != 0 {
        return Err(format!("reply to an empty datagram has {n} bytes"));
    }
    Ok(())
}

/// A datagram of `max + 1000` bytes is answered with its first `max` bytes
/// (Python's `max_packet_size` truncation), and the next one is served whole.
pub fn datagram_truncation(target: &dyn DatagramTarget, max: usize) -> Check {
    let s = target.socket().map_err(io_err("socket"))?;
    let big = pattern(max + 1000, 3);
    s.send(&big).map_err(io_err("send"))?;
    let mut buf = vec![0u8; 65536];
    let n = s.recv(&mut buf).map_err(io_err("reply"))?;
    if n != max || buf[..n] != big[..max] {
        return Err(format!(
            "{n}-byte reply to a {}-byte datagram, want the first {max}",
            big.len()
        ));
    }
    let small = pattern(100, 4);
    s.send(&small).map_err(io_err("send after truncation"))?;
    let n = s.recv(&mut buf).map_err(io_err("reply after truncation"))?;
    if buf[..n] != small[..] {
        return Err("datagram after a truncated one not echoed intact".into());
    }
    Ok(())
}

/// `n` datagrams from one socket, each answered with exactly one reply.
pub fn datagram_one_reply_each(target: &dyn DatagramTarget, n: usize) -> Check {
    let s = target.socket().map_err(io_err("socket"))?;
    let mut buf = vec![0u8; 65536];
    for i in 0..n {
        let msg = pattern(1 + i, i as u32);
        s.send(&msg).map_err(io_err("send"))?;
        let got = s.recv(&mut buf).map_err(io_err("reply"))?;
        if buf[..got] != msg[..] {
            return Err(format!("reply #{i} differs"));
        }
    }
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(io_err("timeout"))?;
    match s.recv(&mut buf) {
        Ok(extra) => Err(format!("an extra {extra}-byte reply arrived")),
        Err(_) => Ok(()),
    }
}
