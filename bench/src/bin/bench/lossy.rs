//! `bench --lossy`: a bulk echo through a lossy link, ours beside the
//! hand-written smoltcp echo and Linux TCP on both ends, in one run.
//!
//! Two private namespaces: the client's, whose kernel sends from TAP
//! device `tapc` (10.77.0.100); and the servers', where a bridge joins TAP
//! device `tapr` to one TAP device per smoltcp server (ours under `sync`
//! and `multiplexed`, `baseline-smoltcp`) and carries the kernel's own
//! address for the Linux server (`baseline-threads`). `impair` relays every
//! frame between `tapc` and `tapr`, dropping, duplicating and reordering
//! them in both directions, so every server sits behind the same link.
//!
//! ```text
//!   client ns                       servers ns
//!   loadgen 10.77.0.100 - tapc ~impair~ tapr - br0 (10.77.0.4: Linux echo)
//!                                             |- tap0  ours sync         10.77.0.1
//!                                             |- tap1  ours multiplexed  10.77.0.2
//!                                             '- tap2  baseline-smoltcp  10.77.0.3
//! ```

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::matrix::{Family, Kind, Listen, Load, Row, Server};
use crate::measure::{self, LoadEnv};
use crate::netns::Namespace;
use crate::servers::{self, Env, Running, Tap};
use crate::table::Results;

/// The link's impairment, each direction, in percent of frames.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    pub loss: f64,
    pub dup: f64,
    pub reorder: f64,
}

/// What the run needs besides the impairment.
pub struct Plan {
    pub impairment: Impairment,
    /// MiB each echo sends at most.
    pub mib: usize,
    /// How long each echo may write (it then reads the rest back).
    pub write_limit: Duration,
    pub repeats: usize,
    pub bin_dir: PathBuf,
    pub echo_server: PathBuf,
    pub tmp: PathBuf,
    pub server_cpu: Option<usize>,
    pub load_cpu: Option<usize>,
    /// Where our servers write pcap captures, if anywhere.
    pub pcap_dir: Option<PathBuf>,
}

/// The target of issue 13 for ours, in MB/s (10^6 bytes).
pub const TARGET_MB_S: f64 = 2.0;

const SUBNET: &str = "10.77.0";
const CLIENT_TAP: &str = "tapc";
const RELAY_TAP: &str = "tapr";
const BRIDGE: &str = "br0";

fn tap_of(index: usize) -> Tap {
    Tap {
        dev: format!("tap{index}"),
        stack_cidr: format!("{SUBNET}.{}/24", index + 1),
        kernel_cidr: String::new(),
        // The stacks share one link: each needs its own address.
        mac: Some(format!("02:00:00:77:00:{:02x}", index + 1)),
    }
}

const fn ours(name: &'static str, strategy: &'static str) -> Server {
    Server {
        name,
        family: Family::Lossy,
        kind: Kind::Ours {
            transport: "smoltcp-tcp",
            strategy,
        },
        listen: Listen::Tap,
    }
}

/// The servers, in the order of their TAP index.
const SERVERS: [Server; 4] = [
    ours("smoltcp sync", "sync"),
    ours("smoltcp multiplexed", "multiplexed"),
    Server {
        name: "baseline-smoltcp",
        family: Family::Lossy,
        kind: Kind::Baseline("baseline-smoltcp"),
        listen: Listen::Tap,
    },
    Server {
        name: "Linux (baseline-threads)",
        family: Family::Lossy,
        kind: Kind::Baseline("baseline-threads"),
        listen: Listen::Tcp,
    },
];

/// The relay between the namespaces; killed on drop if not stopped first.
struct Relay {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Relay {
    fn start(plan: &Plan, client: &Namespace, servers: &Namespace) -> Result<Relay, String> {
        let impair = plan.bin_dir.join("impair");
        let how = plan.impairment;
        let mut child = Command::new(&impair)
            .args(["--a", &format!("{}:{CLIENT_TAP}", client.name())])
            .args(["--b", &format!("{}:{RELAY_TAP}", servers.name())])
            .args(["--loss", &how.loss.to_string()])
            .args(["--dup", &how.dup.to_string()])
            .args(["--reorder", &how.reorder.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", impair.display()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("impair: no stdout pipe".into());
        };
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut relay = Relay { child, lines };
        match relay.lines.recv_timeout(Duration::from_secs(10)) {
            Ok(line) if line == "relaying" => Ok(relay),
            Ok(line) => Err(format!("impair said {line:?}")),
            Err(_) => {
                let _ = relay.child.kill();
                Err("impair did not start (see its stderr above)".into())
            }
        }
    }

    /// Stops the relay and returns what it reports it did.
    fn stop(mut self) -> Vec<String> {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let _ = self.child.wait();
        let mut report = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(1)) {
            report.push(line);
        }
        report
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the comparison and prints its table; `Err` when it could not run.
pub fn run(plan: &Plan) -> Result<(), String> {
    let client = Namespace::create_named("-client")?;
    let servers_ns = Namespace::create_named("-servers")?;
    client.add_tap(CLIENT_TAP, &format!("{SUBNET}.100/24"))?;
    servers_ns.add_bridge(BRIDGE, &format!("{SUBNET}.4/24"))?;
    servers_ns.add_bridged_tap(RELAY_TAP, BRIDGE)?;
    for (index, server) in SERVERS.iter().enumerate() {
        if server.listen == Listen::Tap {
            servers_ns.add_bridged_tap(&tap_of(index).dev, BRIDGE)?;
        }
    }
    let relay = Relay::start(plan, &client, &servers_ns)?;
    let env = Env {
        echo_server: plan.echo_server.clone(),
        bin_dir: plan.bin_dir.clone(),
        python: String::new(),
        python_script: PathBuf::new(),
        tmp: plan.tmp.clone(),
        cpu: plan.server_cpu,
        ns: Some(&servers_ns),
        tap_of,
        tcp_addr: format!("{SUBNET}.4:7"),
        pcap_dir: plan.pcap_dir.clone(),
    };
    let load_env = LoadEnv {
        loadgen: plan.bin_dir.join("loadgen"),
        cpu: plan.load_cpu,
        duration: plan.write_limit,
        ns: Some(&client),
    };
    let load = Load::Echo(plan.mib);
    let mut running: Vec<Running> = Vec::new();
    for (index, server) in SERVERS.iter().enumerate() {
        let r = servers::start(*server, index, &env)?;
        eprintln!(
            "[lossy] {} listening on {} (pid {})",
            server.name, r.addr, r.pid
        );
        running.push(r);
    }
    let mut results = Results::default();
    for rep in 1..=plan.repeats {
        for r in &running {
            let sample = measure::run(load, r, &load_env);
            match &sample {
                Ok(s) => eprintln!(
                    "[lossy] {rep}/{} {} {}: {:.2} MiB/s, server CPU {:.0} µs/MiB",
                    plan.repeats,
                    r.server.name,
                    load.label(),
                    s.rate,
                    s.cpu_us
                ),
                Err(e) => eprintln!(
                    "[lossy] {rep}/{} {}: FAILED: {e} (log: {})",
                    plan.repeats,
                    r.server.name,
                    r.log().display()
                ),
            }
            results.add(&r.server, load, sample);
        }
    }
    for r in running {
        let name = r.server.name;
        if let Err(e) = r.stop() {
            eprintln!("[lossy] {name}: stop: {e}");
        }
    }
    let relayed = relay.stop();
    let rows: Vec<Row> = [(0, 2), (1, 2), (0, 3), (1, 3)]
        .iter()
        .map(|&(a, b)| Row {
            ours: SERVERS[a],
            baseline: SERVERS[b],
            load,
            target: None,
        })
        .collect();
    let how = plan.impairment;
    println!(
        "Echo of {} MiB (writing for at most {:.0} s) through a link dropping {}%, duplicating {}% and reordering {}% of frames each way; every byte checked.\n",
        plan.mib,
        plan.write_limit.as_secs_f64(),
        how.loss,
        how.dup,
        how.reorder
    );
    println!("{}", results.render(&rows));
    println!();
    for server in &SERVERS[..2] {
        if let Some(rate) = results.median_rate(server, load) {
            let mb_s = rate * f64::from(1 << 20) / 1e6;
            println!(
                "- {}: {mb_s:.2} MB/s, target ≥ {TARGET_MB_S} MB/s: {}",
                server.name,
                if mb_s >= TARGET_MB_S { "yes" } else { "**no**" }
            );
        }
    }
    println!("\nThe relay (a = client side, b = servers side):");
    for line in relayed {
        println!("- {line}");
    }
    Ok(())
}
