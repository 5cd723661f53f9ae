//! One measurement: the server's CPU time before, `loadgen` pinned to the
//! load CPU, the server's CPU time after.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use socketserver_bench::{cpu, pin};

use crate::matrix::{Listen, Load};
use crate::netns::Namespace;
use crate::servers::Running;

/// Bytes per request, datagram and round trip.
pub const MESSAGE: usize = 64;

/// How long an `Echo` read may wait: smoltcp's retransmission timeout
/// doubles from 1 s, so a lossy link stalls a plain smoltcp sender for
/// seconds at a time without the connection being dead.
pub const ECHO_STALL: Duration = Duration::from_secs(30);

/// What running the load generator needs.
pub struct LoadEnv<'a> {
    pub loadgen: PathBuf,
    pub cpu: Option<usize>,
    pub duration: Duration,
    pub ns: Option<&'a Namespace>,
}

/// One run of one load point against one server.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Operations (MiB for bulk) per second.
    pub rate: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Server CPU time per operation (per MiB for bulk), in µs.
    pub cpu_us: f64,
    pub errors: u64,
    pub lost: u64,
}

pub fn run(load: Load, server: &Running, env: &LoadEnv<'_>) -> Result<Sample, String> {
    let loadgen = env.loadgen.display().to_string();
    let mut cmd = match env.ns {
        Some(ns) => ns.command(&loadgen),
        None => Command::new(&loadgen),
    };
    let target_flag = match server.server.listen {
        Listen::Tcp | Listen::Tap => "--tcp",
        Listen::Unix => "--unix",
        Listen::Udp => "--udp",
    };
    let secs = format!("{:.3}", env.duration.as_secs_f64());
    let size = MESSAGE.to_string();
    match load {
        Load::Rr(c) | Load::Conn(c) | Load::Udp(c) => {
            let mode = match load {
                Load::Rr(_) => "rr",
                Load::Conn(_) => "conn",
                _ => "udp",
            };
            let c = c.to_string();
            cmd.args([
                mode,
                target_flag,
                &server.addr,
                "-c",
                &c,
                "-s",
                &size,
                "-d",
                &secs,
            ]);
        }
        Load::Bulk => {
            cmd.args(["bulk", target_flag, &server.addr, "-d", &secs]);
        }
        Load::Echo(mib) => {
            let mib = mib.to_string();
            let timeout = format!("{:.0}", ECHO_STALL.as_secs_f64());
            cmd.args([
                "bulk",
                target_flag,
                &server.addr,
                "--mib",
                &mib,
                "-d",
                &secs,
                "--timeout",
                &timeout,
            ]);
        }
    }
    if let Some(cpu) = env.cpu {
        pin::pin_command(&mut cmd, cpu);
    }
    let before = cpu::tree_cpu(server.pid).map_err(|e| format!("server cpu: {e}"))?;
    let output = run_bounded(cmd, env.duration + ECHO_STALL + Duration::from_secs(40))?;
    let after = cpu::tree_cpu(server.pid).map_err(|e| format!("server cpu: {e}"))?;
    let fields = parse(&output).ok_or_else(|| format!("loadgen printed no result: {output}"))?;
    let get = |k: &str| fields.get(k).copied().unwrap_or(0.0);
    let ops = get("ops");
    if ops <= 0.0 {
        return Err(format!("no successful operation: {}", output.trim()));
    }
    Ok(Sample {
        rate: get("rate"),
        p50_us: get("p50_us"),
        p99_us: get("p99_us"),
        cpu_us: after.saturating_sub(before).as_secs_f64() * 1e6 / ops,
        errors: get("errors") as u64,
        lost: get("lost") as u64,
    })
}

/// Runs the load generator, killing it if it outlives `limit` (it bounds
/// itself; this guards against a bug turning into a hung benchmark).
fn run_bounded(mut cmd: Command, limit: Duration) -> Result<String, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start loadgen: {e}"))?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out = thread::spawn(move || {
        let mut text = String::new();
        if let Some(s) = &mut stdout {
            let _ = s.read_to_string(&mut text);
        }
        text
    });
    let err = thread::spawn(move || {
        let mut text = String::new();
        if let Some(s) = &mut stderr {
            let _ = s.read_to_string(&mut text);
        }
        text
    });
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("loadgen still running after {limit:?}: killed"));
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(e.to_string()),
        }
    }
    let text = out.join().unwrap_or_default();
    let errors = err.join().unwrap_or_default();
    if !errors.trim().is_empty() {
        eprintln!("    {}", errors.trim());
    }
    Ok(text)
}

/// The `key=value` fields of the `result ...` line.
fn parse(output: &str) -> Option<HashMap<String, f64>> {
    let line = output.lines().find(|l| l.starts_with("result "))?;
    Some(
        line.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
            .collect(),
    )
}
