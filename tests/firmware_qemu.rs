//! The firmware image (examples/firmware) under QEMU, over a TAP device in a
//! private network namespace, with the Linux kernel as its client: four TCP
//! echo clients at once, 64 KiB each with an integrity check; a burst of eight
//! clients against the firmware's pool of four sockets, 16 KiB each, all of
//! which must be served (the four beyond the pool wait, none is refused or
//! reset); then UDP echo.
//!
//! Needs root, iproute2, qemu-system-arm and the thumbv7m-none-eabi target;
//! without them it prints why and passes, unless REQUIRE_TAP=1.
//! All traffic stays inside the namespace; every wait is bounded.

#[path = "support/netns.rs"]
mod netns;

use std::env;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const TEST: &str = "firmware_qemu";
const TAP: &str = "tap0";
const HOST_CIDR: &str = "192.168.69.100/24";
const FIRMWARE_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 1);
const PORT: u16 = 7;
/// The firmware's line handler (`Upper`).
const UPPER_PORT: u16 = 8;
const READY_LINE: &str = "firmware: echo on";
const TARGET: &str = "thumbv7m-none-eabi";

const CLIENTS: usize = 4;
const BYTES_PER_CLIENT: usize = 64 * 1024;
/// The firmware serves 4 TCP connections at once (examples/firmware/src/echo.rs
/// `POOL`); a burst of twice that must be served completely.
const BURST_CLIENTS: usize = 8;
const BURST_BYTES: usize = 16 * 1024;
/// What the firmware prints when a request fails (its `handle_error` hook).
const FAILURE_LINE: &str = "failed:";
/// What the firmware prints after each accepted connection, with counters.
const ACCEPTED_LINE: &str = "firmware: connections accepted: ";
const LOG_TIMEOUT: Duration = Duration::from_secs(5);
const BOOT_TIMEOUT: Duration = Duration::from_secs(20);
const IO_TIMEOUT: Duration = Duration::from_secs(30);
const UDP_SIZES: [usize; 8] = [1, 7, 64, 300, 512, 1000, 1400, 1472];

#[test]
fn firmware_echoes_tcp_and_udp_over_tap() {
    if !netns::require_tap_or_skip(TEST) || !netns::run_or_skip(TEST, tools_present()) {
        return;
    }
    let started = Instant::now();
    let elf = build_firmware();
    eprintln!("{TEST}: firmware built in {:.1?}", started.elapsed());
    netns::in_new_netns(move || exercise(&elf));
    eprintln!("{TEST}: total {:.1?}", started.elapsed());
}

/// qemu-system-arm on PATH and the firmware's Rust target installed.
fn tools_present() -> Result<(), String> {
    match Command::new("qemu-system-arm").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        _ => {
            return Err(
                "qemu-system-arm is not installed (apt-get install qemu-system-arm)".into(),
            );
        }
    }
    let libdir = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    let libdir = PathBuf::from(String::from_utf8_lossy(&libdir.stdout).trim());
    if libdir.is_dir() {
        Ok(())
    } else {
        Err(format!(
            "Rust target {TARGET} is not installed (rustup target add {TARGET})"
        ))
    }
}

fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/firmware")
}

/// `cargo build --release` in examples/firmware, with the outer cargo's
/// build settings removed from the environment: they are meant for this
/// package's host build (target dir, flags, profile overrides) and would
/// misdirect or break the firmware's cross build.
fn build_firmware() -> PathBuf {
    let dir = firmware_dir();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release"]).current_dir(&dir);
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let keep = [
            "CARGO_HOME",
            "CARGO_NET_",
            "CARGO_HTTP_",
            "CARGO_REGISTRIES_",
            "CARGO_REGISTRY_",
        ]
        .iter()
        .any(|p| key.starts_with(p));
        let drop = (key.starts_with("CARGO_") && !keep)
            || matches!(
                key,
                "RUSTFLAGS" | "RUSTDOCFLAGS" | "RUSTC_WORKSPACE_WRAPPER"
            );
        if drop {
            cmd.env_remove(key);
        }
    }
    let out = cmd.output().expect("run cargo to build the firmware");
    assert!(
        out.status.success(),
        "firmware build failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let elf = dir
        .join("target")
        .join(TARGET)
        .join("release/socketserver-firmware");
    assert!(elf.is_file(), "no firmware image at {}", elf.display());
    elf
}

/// Runs inside the private namespace: TAP, QEMU, then the clients.
fn exercise(elf: &Path) {
    netns::add_tap(TAP, HOST_CIDR).unwrap_or_else(|e| panic!("{e}"));
    let mut qemu = Qemu::boot(elf);
    let t = Instant::now();
    qemu.wait_for_line(READY_LINE, BOOT_TIMEOUT);
    wait_until_echoing(&mut qemu, BOOT_TIMEOUT);
    eprintln!("{TEST}: firmware answering after {:.1?}", t.elapsed());

    let t = Instant::now();
    tcp_clients_at_once();
    let secs = t.elapsed().as_secs_f64();
    let total = (CLIENTS * BYTES_PER_CLIENT) as f64;
    eprintln!(
        "{TEST}: {CLIENTS} TCP clients x {} KiB echoed in {secs:.2} s ({:.0} KiB/s each way)",
        BYTES_PER_CLIENT / 1024,
        total / 1024.0 / secs
    );

    let t = Instant::now();
    tcp_burst_beyond_pool();
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "{TEST}: burst of {BURST_CLIENTS} TCP clients x {} KiB (pool of 4) echoed in {secs:.2} s",
        BURST_BYTES / 1024
    );
    let report = qemu.wait_for_accepted(CLIENTS + BURST_CLIENTS + 1, LOG_TIMEOUT);
    eprintln!("{TEST}: {report}");
    assert!(
        syns_held(&report) > 0,
        "the burst never found the pool full (no SYN held): {report}"
    );

    let t = Instant::now();
    upper_lines_at_once();
    eprintln!(
        "{TEST}: {CLIENTS} line clients on port {UPPER_PORT} answered in {:.1?}",
        t.elapsed()
    );

    let t = Instant::now();
    udp_echo();
    eprintln!(
        "{TEST}: {} UDP datagrams echoed in {:.1?}",
        UDP_SIZES.len(),
        t.elapsed()
    );
    qemu.assert_running();
    let output = qemu.output();
    assert!(
        !output.contains(FAILURE_LINE),
        "the firmware reported failed requests:\n{output}"
    );
}

/// QEMU with the firmware; killed and reaped on drop, so no process outlives
/// the test (and the namespace goes when the test thread ends).
struct Qemu {
    child: Child,
    lines: Receiver<String>,
    log: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Qemu {
    fn boot(elf: &Path) -> Self {
        let nic = format!("tap,ifname={TAP},script=no,downscript=no,model=stellaris");
        let mut child = Command::new("qemu-system-arm")
            .args([
                "-M",
                "lm3s6965evb",
                "-display",
                "none",
                "-monitor",
                "none",
                "-serial",
                "none",
            ])
            .args(["-semihosting", "-nic", &nic, "-kernel"])
            .arg(elf)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start qemu-system-arm");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        let mut readers = Vec::new();
        let stdout = child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        let stderr = child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>);
        for stream in [stdout, stderr].into_iter().flatten() {
            let (tx, log) = (tx.clone(), Arc::clone(&log));
            readers.push(thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Ok(mut log) = log.lock() {
                        log.push_str(&line);
                        log.push('\n');
                    }
                    let _ = tx.send(line);
                }
            }));
        }
        Qemu {
            child,
            lines,
            log,
            readers,
        }
    }

    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("QEMU exited early ({status}); output:\n{}", self.output());
        }
    }

    fn wait_for_line(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) if line.contains(needle) => return,
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => self.assert_running(),
                Err(mpsc::RecvTimeoutError::Disconnected) => self.assert_running(),
            }
        }
        panic!(
            "no {needle:?} from the firmware within {timeout:?}; output:\n{}",
            self.output()
        );
    }

    /// Waits until the firmware reports at least `n` accepted connections
    /// (the probe connections of `wait_until_echoing` count too) and returns
    /// that report line.
    fn wait_for_accepted(&mut self, n: usize, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let output = self.output();
            let last = output.lines().rev().find(|l| l.contains(ACCEPTED_LINE));
            if let Some(line) = last {
                let count = line
                    .split(ACCEPTED_LINE)
                    .nth(1)
                    .and_then(|rest| rest.split(';').next())
                    .and_then(|c| c.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if count >= n {
                    return line.to_string();
                }
            }
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "the firmware did not report {n} accepted connections within {timeout:?}; output:\n{output}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn output(&self) -> String {
        self.log.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        if thread::panicking() {
            eprintln!("{TEST}: QEMU output:\n{}", self.output());
        }
    }
}

/// Retries a small echo until the firmware answers (ARP, boot, listen).
fn wait_until_echoing(qemu: &mut Qemu, timeout: Duration) {
    let addr = SocketAddr::from((FIRMWARE_IP, PORT));
    let deadline = Instant::now() + timeout;
    let mut last_error = String::new();
    while Instant::now() < deadline {
        qemu.assert_running();
        match echo_once(&addr, b"ping") {
            Ok(()) => return,
            Err(e) => last_error = e,
        }
        thread::sleep(Duration::from_millis(200));
    }
    panic!("firmware did not echo within {timeout:?}: {last_error}");
}

fn echo_once(addr: &SocketAddr, msg: &[u8]) -> Result<(), String> {
    let mut s =
        TcpStream::connect_timeout(addr, Duration::from_secs(1)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    s.write_all(msg).map_err(|e| e.to_string())?;
    s.shutdown(Shutdown::Write).map_err(|e| e.to_string())?;
    let mut back = Vec::new();
    s.read_to_end(&mut back).map_err(|e| e.to_string())?;
    if back == msg {
        Ok(())
    } else {
        Err(format!("echo mismatch: {back:?}"))
    }
}

/// Byte `i` of client `c`'s stream: position-dependent, distinct per client,
/// so loss, duplication, reordering or cross-talk all show.
fn pattern(c: usize, i: usize) -> u8 {
    let x = (i as u32).wrapping_mul(2_654_435_761) ^ (c as u32).wrapping_mul(0x9e37_79b9);
    (x >> 13) as u8
}

/// Connects all clients first (so all are open at once), then each writes its
/// 64 KiB from one thread while another reads the echo back and compares.
fn tcp_clients_at_once() {
    let addr = SocketAddr::from((FIRMWARE_IP, PORT));
    let streams: Vec<TcpStream> = (0..CLIENTS)
        .map(|c| connect(c, &addr, Duration::from_secs(5)))
        .collect();
    let start = Arc::new(Barrier::new(2 * CLIENTS));
    let mut workers = Vec::new();
    for (c, stream) in streams.into_iter().enumerate() {
        workers.extend(echo_client(c, stream, BYTES_PER_CLIENT, &start));
    }
    join_all(workers, "TCP clients");
}

/// The line handler on port 8: `CLIENTS` connections open at once, their
/// lines interleaved (all requests in flight together on the firmware's
/// four slots), each answered in upper case; an overlong line is answered
/// with an error line and the connection goes on.
fn upper_lines_at_once() {
    let addr = SocketAddr::from((FIRMWARE_IP, UPPER_PORT));
    let mut streams: Vec<(TcpStream, BufReader<TcpStream>)> = (0..CLIENTS)
        .map(|c| {
            let s = connect(c, &addr, Duration::from_secs(5));
            let reader = BufReader::new(s.try_clone().expect("clone"));
            (s, reader)
        })
        .collect();
    for round in 0..5 {
        for (c, (s, reader)) in streams.iter_mut().enumerate() {
            s.write_all(format!("client {c} line {round}\n").as_bytes())
                .expect("send a line");
            let mut answer = String::new();
            reader.read_line(&mut answer).expect("an answer");
            assert_eq!(answer, format!("CLIENT {c} LINE {round}\n"));
        }
    }
    let (s, reader) = &mut streams[0];
    s.write_all(format!("{}\nafter\n", "x".repeat(1000)).as_bytes())
        .expect("send");
    for want in ["ERROR line too long\n", "AFTER\n"] {
        let mut answer = String::new();
        reader.read_line(&mut answer).expect("an answer");
        assert_eq!(answer, want);
    }
}

/// More clients than the firmware has sockets, all connecting at once: the
/// ones beyond the pool wait in the firmware's SYN backlog until a socket
/// frees, so every connect succeeds (no RST) and every echo is complete.
fn tcp_burst_beyond_pool() {
    let addr = SocketAddr::from((FIRMWARE_IP, PORT));
    let go = Arc::new(Barrier::new(BURST_CLIENTS));
    let clients: Vec<JoinHandle<()>> = (0..BURST_CLIENTS)
        .map(|c| {
            let go = Arc::clone(&go);
            thread::spawn(move || {
                let c = CLIENTS + c; // distinct patterns from the first test's
                go.wait();
                // A waiting client's connect lasts until a socket frees (the
                // first four finish in well under a second): bounded by IO_TIMEOUT.
                let stream = connect(c, &addr, IO_TIMEOUT);
                let pair = Arc::new(Barrier::new(2));
                join_all(echo_client(c, stream, BURST_BYTES, &pair), "client");
            })
        })
        .collect();
    join_all(clients, "burst clients");
}

/// The "SYNs held N" counter of a firmware report line (0 if absent).
fn syns_held(report: &str) -> u32 {
    report
        .split("SYNs held ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn connect(c: usize, addr: &SocketAddr, timeout: Duration) -> TcpStream {
    let s = TcpStream::connect_timeout(addr, timeout)
        .unwrap_or_else(|e| panic!("client {c}: connect: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    s.set_write_timeout(Some(IO_TIMEOUT))
        .expect("write timeout");
    s
}

/// A writer thread sending `bytes` of client `c`'s pattern then EOF, and a
/// reader thread checking the echo byte for byte; both start at `start`.
fn echo_client(
    c: usize,
    stream: TcpStream,
    bytes: usize,
    start: &Arc<Barrier>,
) -> [JoinHandle<()>; 2] {
    let mut writer = stream.try_clone().expect("clone stream");
    let mut reader = stream;
    let start_w = Arc::clone(start);
    let write = thread::spawn(move || {
        let data: Vec<u8> = (0..bytes).map(|i| pattern(c, i)).collect();
        start_w.wait();
        for chunk in data.chunks(4096) {
            writer
                .write_all(chunk)
                .unwrap_or_else(|e| panic!("client {c}: write: {e}"));
        }
        writer
            .shutdown(Shutdown::Write)
            .unwrap_or_else(|e| panic!("client {c}: shutdown: {e}"));
    });
    let start_r = Arc::clone(start);
    let read = thread::spawn(move || {
        start_r.wait();
        let mut got = Vec::with_capacity(bytes);
        let mut buf = [0u8; 8192];
        loop {
            let n = reader
                .read(&mut buf)
                .unwrap_or_else(|e| panic!("client {c}: read after {} bytes: {e}", got.len()));
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            assert!(got.len() <= bytes, "client {c}: more bytes than sent");
        }
        assert_eq!(got.len(), bytes, "client {c}: echo length");
        if let Some(i) = (0..got.len()).find(|&i| got[i] != pattern(c, i)) {
            panic!("client {c}: echo differs at byte {i}");
        }
    });
    [write, read]
}

/// Joins every thread, then fails with all their panic messages, if any.
fn join_all(workers: impl IntoIterator<Item = JoinHandle<()>>, what: &str) {
    let mut failures = Vec::new();
    for w in workers {
        if let Err(payload) = w.join() {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(msg);
        }
    }
    assert!(failures.is_empty(), "{what} failed: {failures:#?}");
}

/// One datagram at a time, each retried a few times (UDP may drop).
fn udp_echo() {
    let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind UDP client");
    sock.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("read timeout");
    let server = SocketAddr::from((FIRMWARE_IP, PORT));
    let mut buf = [0u8; 2048];
    for (k, &size) in UDP_SIZES.iter().enumerate() {
        let msg: Vec<u8> = (0..size).map(|i| pattern(100 + k, i)).collect();
        let mut answered = false;
        for _attempt in 0..3 {
            sock.send_to(&msg, server).expect("send datagram");
            match sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    assert_eq!(from, server, "reply from the wrong address");
                    assert_eq!(&buf[..n], &msg[..], "UDP echo of {size} bytes differs");
                    answered = true;
                    break;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("UDP receive: {e}"),
            }
        }
        assert!(
            answered,
            "no UDP echo of a {size}-byte datagram after 3 tries"
        );
    }
}
