//! Resource exhaustion on the built `echo_server`: with its descriptor limit
//! used up, accept fails with EMFILE while clients wait in the backlog. The
//! server must neither spin on the listener that stays readable nor leave
//! `serve_forever`, and it serves again once descriptors are free.
//!
//! Its own test binary, so no other test loads the CPU it measures.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use support::behaviour;

/// The server's `RLIMIT_NOFILE`: small, so a few dozen clients exhaust it.
const FD_LIMIT: usize = 64;
/// More clients than the server can hold descriptors for.
const CLIENTS: usize = FD_LIMIT + 40;
/// A server spinning on accept burns a whole core; pausing uses almost none.
const MAX_CPU_SHARE: f64 = 0.30;
/// `/proc/PID/stat` counts CPU time in USER_HZ ticks, 100 a second on Linux.
const TICKS_PER_SECOND: f64 = 100.0;

/// `echo_server` under `ulimit -n FD_LIMIT`; killed and reaped when dropped.
struct LimitedServer {
    child: Child,
    addr: SocketAddr,
}

impl LimitedServer {
    fn start(strategy: &str) -> Self {
        // sh sets the limit and execs the server: no pre-exec hook, no unsafe.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {FD_LIMIT} && exec \"$0\" \"$@\""))
            .arg(support::echo_server_bin())
            .args(["--strategy", strategy])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sh -c 'ulimit -n 64; exec echo_server'");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("no first line from echo_server");
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|a| a.trim_end().parse().ok())
            .unwrap_or_else(|| panic!("first line {line:?}"));
        Self { child, addr }
    }

    fn proc_path(&self, leaf: &str) -> String {
        format!("/proc/{}/{leaf}", self.child.id())
    }

    fn open_fds(&self) -> usize {
        std::fs::read_dir(self.proc_path("fd")).map_or(0, |d| d.count())
    }

    /// User plus system CPU time of every thread, in seconds.
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(self.proc_path("stat")).expect("/proc/PID/stat");
        // pid (comm) state ppid ...: utime and stime are fields 14 and 15,
        // the 12th and 13th after the ')' that ends comm.
        let (_, rest) = stat.rsplit_once(')').expect("stat format");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        ticks as f64 / TICKS_PER_SECOND
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for LimitedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn exhaust_then_recover(strategy: &str) {
    let mut server = LimitedServer::start(strategy);
    // Silent clients: each one the server accepts holds a descriptor until
    // the client closes; the rest wait in the backlog.
    let clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| TcpStream::connect_timeout(&server.addr, Duration::from_secs(5)).unwrap())
        .collect();
    assert!(
        support::eventually(Duration::from_secs(10), || server.open_fds() >= FD_LIMIT),
        "{strategy}: the server holds {} descriptors, never reached {FD_LIMIT}",
        server.open_fds()
    );
    // Let the server settle into its accept-fails state, then measure it.
    thread::sleep(Duration::from_millis(200));
    let (cpu_before, start) = (server.cpu_seconds(), Instant::now());
    thread::sleep(Duration::from_secs(1));
    let share = (server.cpu_seconds() - cpu_before) / start.elapsed().as_secs_f64();
    eprintln!(
        "{strategy}: {} fds, CPU share while accept fails: {:.1}%",
        server.open_fds(),
        share * 100.0
    );
    assert!(
        share < MAX_CPU_SHARE,
        "{strategy}: the server used {:.0}% of a core while accept failed",
        share * 100.0
    );
    assert!(server.is_running(), "{strategy}: the server exited");

    // A client beyond the limit is not served while descriptors are exhausted.
    let mut waiting = TcpStream::connect(server.addr).unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    std::io::Write::write_all(&mut waiting, b"x").unwrap();
    let mut byte = [0u8; 1];
    assert!(
        waiting.read(&mut byte).is_err(),
        "{strategy}: served with no descriptor free"
    );

    drop(clients);
    // Once descriptors are free again the waiting client, then a new one, are served.
    waiting
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    waiting
        .read_exact(&mut byte)
        .expect("the waiting client is served");
    assert_eq!(&byte, b"x");
    behaviour::echo_round_trip(&behaviour::tcp(server.addr)).expect("serving again");
    assert!(server.is_running(), "{strategy}: the server exited");
}

#[test]
fn accept_failing_with_emfile_neither_spins_nor_stops_the_server() {
    for strategy in ["threading", "multiplexed"] {
        exhaust_then_recover(strategy);
    }
}
