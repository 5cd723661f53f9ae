//! `echo_server --transport smoltcp-tcp|smoltcp-udp` as a process, attached
//! to a TAP device in a private network namespace, driven by the behaviour
//! suite from the kernel side.

#[path = "support/netns.rs"]
mod netns;
mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::behaviour;

const TAP_ARGS: [&str; 4] = ["--tap", "tap0", "--ip", "192.168.69.1/24"];

/// The server process; killed if a check fails before it is stopped.
struct Server(Option<Child>);

impl Server {
    fn start(transport: &str, strategy: &str) -> (Self, SocketAddr) {
        let mut child = Command::new(support::echo_server_bin())
            .args(["--transport", transport, "--strategy", strategy])
            .args(TAP_ARGS)
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
        let (server, addr) = Server::start("smoltcp-udp", "sync");
        let target = behaviour::udp(addr);
        check("echo", behaviour::datagram_echo(&target));
        check("truncation", behaviour::datagram_truncation(&target, 8192));
        assert_eq!(server.stop(), 0);
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
    });
}
