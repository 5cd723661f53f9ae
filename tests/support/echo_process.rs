//! A running `echo_server` as a separate process, for tests of its
//! contract and of what it promises under hostile peers.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// A running `echo_server`; killed and reaped when dropped.
pub struct Server {
    child: Child,
    /// The address of its first line.
    pub address: String,
    stderr: mpsc::Receiver<String>,
    /// Leads a process group of its own (its pid is the group's id).
    own_group: bool,
}

impl Server {
    pub fn start(args: &[&str]) -> Server {
        Self::spawn(args, false)
    }

    /// Starts it in a process group of its own, as a shell starts a job, so
    /// that a signal to the group (Ctrl-C) reaches it and its children
    /// and not this test.
    pub fn start_own_group(args: &[&str]) -> Server {
        Self::spawn(args, true)
    }

    fn spawn(args: &[&str], own_group: bool) -> Server {
        let mut command = Command::new(super::echo_server_bin());
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if own_group {
            command.process_group(0);
        }
        let mut child = command.spawn().expect("spawn echo_server");
        let stdout = child.stdout.take().expect("stdout");
        let (line_tx, line_rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = line_tx.send(line);
        });
        let stderr = child.stderr.take().expect("stderr");
        let (err_tx, err_rx) = mpsc::channel();
        thread::spawn(move || {
            let mut all = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut all);
            let _ = err_tx.send(all);
        });
        let line = line_rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no first line from echo_server {args:?}"));
        let address = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line {line:?}"))
            .trim_end()
            .to_owned();
        Server {
            child,
            address,
            stderr: err_rx,
            own_group,
        }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn ip(&self) -> SocketAddr {
        self.address.parse().expect("IP:PORT")
    }

    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).expect("kill");
    }

    /// Sends `signal` to its whole process group, as Ctrl-C in a terminal
    /// does (only for [`start_own_group`](Self::start_own_group)).
    pub fn signal_group(&self, signal: Signal) {
        assert!(self.own_group, "not started in a group of its own");
        killpg(Pid::from_raw(self.child.id() as i32), signal).expect("killpg");
    }

    /// Waits for the exit; returns the status and everything on stderr.
    pub fn wait(mut self, within: Duration) -> (ExitStatus, String, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let stderr = self
                    .stderr
                    .recv_timeout(Duration::from_secs(5))
                    .unwrap_or_default();
                return (status, stderr, start.elapsed());
            }
            assert!(
                start.elapsed() < within,
                "echo_server did not exit within {within:?}"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then exit 0 with nothing alarming on stderr.
    pub fn stop(self) {
        self.signal(Signal::SIGTERM);
        let (status, stderr, _) = self.wait(Duration::from_secs(15));
        assert_eq!(status.code(), Some(0), "stderr: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Processes a failing test leaves behind (their group still has
        // members, so its id is not reused yet). Not after a passing wait:
        // a test that checks the group is empty must see what is left.
        let group = self.child.id();
        if self.own_group && thread::panicking() && !super::process_group_members(group).is_empty()
        {
            let _ = killpg(Pid::from_raw(group as i32), Signal::SIGKILL);
        }
    }
}
