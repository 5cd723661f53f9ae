//! Starting and stopping the servers of the matrix, each a separate process
//! pinned to the server CPU, known to be serving once it printed `listening on ADDR`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use socketserver_bench::pin;

use crate::matrix::{Kind, Listen, Server};
use crate::netns::Namespace;

/// How long a server may take to print its first line.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// What starting a server needs.
pub struct Env<'a> {
    pub echo_server: PathBuf,
    pub bin_dir: PathBuf,
    pub python: String,
    pub python_script: PathBuf,
    /// Unix socket paths and server logs go here.
    pub tmp: PathBuf,
    pub cpu: Option<usize>,
    pub ns: Option<&'a Namespace>,
    /// The TAP device and addresses of the TAP server with this index.
    pub tap_of: fn(usize) -> Tap,
    /// Where kernel TCP servers listen.
    pub tcp_addr: String,
    /// Where our TAP servers write a pcap capture, if anywhere.
    pub pcap_dir: Option<PathBuf>,
}

/// A TAP server's device and addresses, from its index in the family.
pub struct Tap {
    pub dev: String,
    pub stack_cidr: String,
    pub kernel_cidr: String,
    /// The stack's MAC address, when several stacks share a link.
    pub mac: Option<String>,
}

impl Tap {
    /// A subnet of its own per server: 192.168.(69 + index).0/24.
    pub fn new(index: usize) -> Tap {
        let net = 69 + index;
        Tap {
            dev: format!("tap{index}"),
            stack_cidr: format!("192.168.{net}.1/24"),
            kernel_cidr: format!("192.168.{net}.100/24"),
            mac: None,
        }
    }
}

/// A server that is serving; killed on drop if not stopped first.
pub struct Running {
    pub server: Server,
    pub pid: u32,
    /// The address it announced.
    pub addr: String,
    child: Option<Child>,
    log: PathBuf,
}

/// Starts `server` (TAP servers use `Tap::new(index)`, created beforehand).
pub fn start(server: Server, index: usize, env: &Env<'_>) -> Result<Running, String> {
    let slug: String = server
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let base = format!("{}-{slug}", server.family.name());
    let addr = match server.listen {
        Listen::Tcp => env.tcp_addr.clone(),
        Listen::Udp => "127.0.0.1:0".to_string(),
        Listen::Unix => env.tmp.join(format!("{base}.sock")).display().to_string(),
        Listen::Tap => String::new(),
    };
    let tap = (env.tap_of)(index);
    let (program, args): (String, Vec<String>) = match server.kind {
        Kind::Ours {
            transport,
            strategy,
        } => {
            let mut args = vec![
                "--transport".into(),
                transport.into(),
                "--strategy".into(),
                strategy.into(),
            ];
            if server.listen == Listen::Tap {
                args.extend([
                    "--tap".into(),
                    tap.dev.clone(),
                    "--ip".into(),
                    tap.stack_cidr.clone(),
                ]);
                if let Some(mac) = &tap.mac {
                    args.extend(["--mac".into(), mac.clone()]);
                }
                if let Some(dir) = &env.pcap_dir {
                    let file = dir.join(format!("{base}.pcap"));
                    args.extend(["--pcap".into(), file.display().to_string()]);
                }
            } else {
                args.extend(["--addr".into(), addr]);
            }
            (env.echo_server.display().to_string(), args)
        }
        Kind::Baseline(bin) => {
            let args = match server.listen {
                Listen::Tcp => vec!["--tcp".into(), addr],
                Listen::Unix => vec!["--unix".into(), addr],
                Listen::Udp => vec!["--udp".into(), addr],
                Listen::Tap => vec![
                    "--tap".into(),
                    tap.dev.clone(),
                    "--ip".into(),
                    tap.stack_cidr.clone(),
                ],
            };
            (env.bin_dir.join(bin).display().to_string(), args)
        }
        Kind::Python(kind) => (
            env.python.clone(),
            vec![env.python_script.display().to_string(), kind.into(), addr],
        ),
    };
    let mut cmd = match env.ns {
        Some(ns) => ns.command(&program),
        None => Command::new(&program),
    };
    cmd.args(&args);
    if let Some(cpu) = env.cpu {
        pin::pin_command(&mut cmd, cpu);
    }
    let log = env.tmp.join(format!("{base}.log"));
    let log_file = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let pid = child.id();
    let mut running = Running {
        server,
        pid,
        addr: String::new(),
        child: None,
        log,
    };
    let Some(stdout) = child.stdout.take() else {
        running.child = Some(child);
        return Err("no stdout pipe".into());
    };
    running.child = Some(child);
    running.addr = first_line(stdout)
        .and_then(|line| {
            line.strip_prefix("listening on ")
                .map(str::to_string)
                .ok_or(line)
        })
        .map_err(|why| {
            format!(
                "{} did not announce its address ({why}); log: {}",
                server.name,
                running.log.display()
            )
        })?;
    Ok(running)
}

/// Reads the first stdout line (with a timeout) and keeps draining the rest
/// in a thread so the server never blocks on a full pipe.
pub fn first_line(stdout: std::process::ChildStdout) -> Result<String, String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next();
        let _ = tx.send(first);
        for _ in lines {}
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(Some(Ok(line))) => Ok(line),
        Ok(Some(Err(e))) => Err(e.to_string()),
        Ok(None) => Err("it exited".into()),
        Err(_) => Err(format!("nothing within {START_TIMEOUT:?}")),
    }
}

impl Running {
    /// Sends SIGTERM and waits for the exit; returns how long it took (the
    /// whole process teardown, an upper bound on the shutdown latency).
    pub fn stop(mut self) -> Result<Duration, String> {
        let Some(mut child) = self.child.take() else {
            return Err("not running".into());
        };
        let asked = Instant::now();
        kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM).map_err(|e| e.to_string())?;
        while asked.elapsed() < STOP_TIMEOUT {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(asked.elapsed()),
                Ok(None) => thread::sleep(Duration::from_micros(200)),
                Err(e) => return Err(e.to_string()),
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!(
            "did not exit within {STOP_TIMEOUT:?} of SIGTERM; killed"
        ))
    }

    pub fn log(&self) -> &Path {
        &self.log
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
