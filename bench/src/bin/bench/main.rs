//! `bench`: runs the benchmark matrix and prints a markdown table of
//! medians, ours against each baseline, with the servers' CPU time per
//! request.
//!
//! ```text
//! bench [--quick] [--only tcp,unix,udp,smoltcp,python,tokio,...] [--duration SECS] [--repeats N]
//! bench --lossy [--loss 5] [--dup 5] [--reorder 10] [--mib 10] [--write-limit 15] [--repeats N]
//! ```
//!
//! Each server is a separate process pinned to one CPU, the load generator
//! to another; each point runs `--repeats` times, interleaved across the
//! servers of a group so drift hits ours and the baselines alike. smoltcp
//! points run in a private network namespace created here and removed at
//! the end; without root or `/dev/net/tun` they are skipped, loudly.
//!
//! `--lossy` runs something else instead: a bulk echo through a link that
//! drops, duplicates and reorders frames (see `lossy.rs`), ours beside the
//! hand-written smoltcp echo and Linux TCP.

mod lossy;
mod matrix;
mod measure;
mod netns;
mod servers;
mod table;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use clap::Parser;
use socketserver_bench::pin;

use matrix::{Family, Kind, Listen, Load, Row, Server};
use measure::LoadEnv;
use servers::{Env, Running, Tap};
use table::Results;

#[derive(Debug, Parser)]
#[command(name = "bench", about = "Runs the socketserver benchmark matrix")]
struct Cli {
    /// One run per point, 0.5 s each: a smoke test, not figures to quote.
    #[arg(long)]
    quick: bool,
    /// Only rows matching one of these (a group: tcp, unix, udp, smoltcp; or
    /// part of a server name or point: python, tokio, forking, bulk, "conn 4").
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Seconds per point.
    #[arg(long, default_value_t = 1.5)]
    duration: f64,
    /// Runs per point (the table shows medians).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Where loadgen and the baselines are (default: beside this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Our server (default: BIN_DIR/examples/echo_server, built with
    /// `cargo build --release --example echo_server`).
    #[arg(long)]
    echo_server: Option<PathBuf>,
    /// The Python interpreter for Python's socketserver baselines.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Instead of the matrix: a bulk echo through a lossy link (needs root).
    #[arg(long)]
    lossy: bool,
    /// --lossy: percent of frames dropped, each way.
    #[arg(long, default_value_t = 5.0)]
    loss: f64,
    /// --lossy: percent of frames sent twice, each way.
    #[arg(long, default_value_t = 5.0)]
    dup: f64,
    /// --lossy: percent of frames sent after the next one, each way.
    #[arg(long, default_value_t = 10.0)]
    reorder: f64,
    /// --lossy: MiB each echo sends at most.
    #[arg(long, default_value_t = 10)]
    mib: usize,
    /// --lossy: seconds each echo may write; it then reads the rest back
    /// (a slow server is measured on what it echoed, not waited for).
    #[arg(long, default_value_t = 15.0)]
    write_limit: f64,
    /// --lossy: capture every frame of our servers to DIR/NAME.pcap.
    #[arg(long, value_name = "DIR")]
    pcap: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let started = Instant::now();
    let (duration, repeats) = if cli.quick {
        (Duration::from_millis(500), 1)
    } else {
        let d = Duration::try_from_secs_f64(cli.duration)
            .ok()
            .filter(|d| *d > Duration::ZERO && *d <= Duration::from_secs(60));
        match d {
            Some(d) => (d, cli.repeats.clamp(1, 20)),
            None => {
                eprintln!("bench: --duration must be in (0, 60] seconds");
                return ExitCode::from(2);
            }
        }
    };
    let bin_dir = match cli
        .bin_dir
        .clone()
        .or_else(|| Some(std::env::current_exe().ok()?.parent()?.to_path_buf()))
    {
        Some(dir) => dir,
        None => {
            eprintln!("bench: cannot tell where the binaries are: pass --bin-dir");
            return ExitCode::from(2);
        }
    };
    let echo_server = cli
        .echo_server
        .clone()
        .unwrap_or_else(|| bin_dir.join("examples/echo_server"));
    for needed in [echo_server.clone(), bin_dir.join("loadgen")] {
        if !needed.exists() {
            eprintln!(
                "bench: {} is missing: run scripts/bench (it builds everything)",
                needed.display()
            );
            return ExitCode::FAILURE;
        }
    }

    if cli.lossy {
        return run_lossy(&cli, bin_dir, echo_server, started);
    }

    let mut rows = selected(&cli.only);
    let mut skipped = Vec::new();
    if let Err(why) = python_available(&cli.python) {
        drop_rows(
            &mut rows,
            &mut skipped,
            |s| matches!(s.kind, Kind::Python(_)),
            &format!("Python baselines SKIPPED: {why}"),
        );
    }
    if let Err(why) = netns::privileges() {
        drop_rows(
            &mut rows,
            &mut skipped,
            |s| s.family == Family::Smoltcp,
            &format!("smoltcp points SKIPPED: {why} (they need root and /dev/net/tun)"),
        );
    }
    if rows.is_empty() {
        eprintln!(
            "bench: nothing to run (--only matched no row, or every matching row was skipped)"
        );
        return ExitCode::FAILURE;
    }

    let cpus = pin::allowed_cpus();
    let (server_cpu, load_cpu) = match cpus.as_slice() {
        [a, b, ..] => (Some(*a), Some(*b)),
        _ => {
            eprintln!(
                "bench: warning: fewer than 2 CPUs allowed: server and load generator not pinned"
            );
            (None, None)
        }
    };
    let tmp = std::env::temp_dir().join(format!("ssbench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&tmp) {
        eprintln!("bench: {}: {e}", tmp.display());
        return ExitCode::FAILURE;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/echo_server.py");

    let mut results = Results::default();
    let mut stops = Vec::new();
    let mut failed = false;
    for family in Family::ALL {
        let family_rows: Vec<Row> = rows
            .iter()
            .copied()
            .filter(|r| r.ours.family == family)
            .collect();
        if family_rows.is_empty() {
            continue;
        }
        let ns = if family == Family::Smoltcp {
            match netns::Namespace::create() {
                Ok(ns) => Some(ns),
                Err(e) => {
                    eprintln!("bench: smoltcp points: cannot create the namespace: {e}");
                    failed = true;
                    continue;
                }
            }
        } else {
            None
        };
        let env = Env {
            echo_server: echo_server.clone(),
            bin_dir: bin_dir.clone(),
            python: cli.python.clone(),
            python_script: script.clone(),
            tmp: tmp.clone(),
            cpu: server_cpu,
            ns: ns.as_ref(),
            tap_of: Tap::new,
            tcp_addr: "127.0.0.1:0".into(),
            pcap_dir: None,
        };
        let load_env = LoadEnv {
            loadgen: bin_dir.join("loadgen"),
            cpu: load_cpu,
            duration,
            ns: ns.as_ref(),
        };
        match run_family(family, &family_rows, &env, &load_env, repeats, &mut results) {
            Ok(mut stopped) => stops.append(&mut stopped),
            Err(e) => {
                eprintln!("bench: {} group: {e}", family.name());
                failed = true;
            }
        }
        // The namespace (and its TAP devices) goes here, before the next group.
        drop(ns);
    }
    let _ = std::fs::remove_dir_all(&tmp);

    println!("{}", results.render(&rows));
    println!();
    println!("Server stop time (SIGTERM to exit, idle server, whole process teardown):");
    for (name, took) in &stops {
        println!("- {name}: {took}");
    }
    for why in &skipped {
        println!("\n{why}");
    }
    println!(
        "\n{} s per point, {} run(s) each, medians; messages {} bytes; server on CPU {}, load on CPU {}; {}; the matrix took {:.0} s.",
        duration.as_secs_f64(),
        repeats,
        measure::MESSAGE,
        server_cpu.map_or("any".into(), |c| c.to_string()),
        load_cpu.map_or("any".into(), |c| c.to_string()),
        machine(),
        started.elapsed().as_secs_f64()
    );
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `--lossy`: the lossy-link comparison instead of the matrix.
fn run_lossy(cli: &Cli, bin_dir: PathBuf, echo_server: PathBuf, started: Instant) -> ExitCode {
    let percent = |p: f64| (0.0..=100.0).contains(&p);
    let write_limit = Duration::try_from_secs_f64(cli.write_limit)
        .ok()
        .filter(|d| *d > Duration::ZERO && *d <= Duration::from_secs(120));
    let (Some(write_limit), true, true) = (
        write_limit,
        percent(cli.loss) && percent(cli.dup) && percent(cli.reorder),
        (1..=1024).contains(&cli.mib),
    ) else {
        eprintln!(
            "bench: --lossy needs --write-limit in (0, 120] s, percentages in 0-100 and --mib in 1-1024"
        );
        return ExitCode::from(2);
    };
    if let Err(why) = netns::privileges() {
        eprintln!("bench --lossy: cannot run: {why} (it needs root and /dev/net/tun)");
        return ExitCode::FAILURE;
    }
    let (server_cpu, load_cpu) = match pin::allowed_cpus().as_slice() {
        [a, b, ..] => (Some(*a), Some(*b)),
        _ => (None, None),
    };
    let tmp = std::env::temp_dir().join(format!("ssbench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&tmp) {
        eprintln!("bench: {}: {e}", tmp.display());
        return ExitCode::FAILURE;
    }
    let plan = lossy::Plan {
        impairment: lossy::Impairment {
            loss: cli.loss,
            dup: cli.dup,
            reorder: cli.reorder,
        },
        mib: cli.mib,
        write_limit,
        repeats: if cli.quick {
            1
        } else {
            cli.repeats.clamp(1, 20)
        },
        bin_dir,
        echo_server,
        tmp: tmp.to_path_buf(),
        server_cpu,
        load_cpu,
        pcap_dir: cli.pcap.clone(),
    };
    let outcome = lossy::run(&plan);
    let _ = std::fs::remove_dir_all(&tmp);
    match outcome {
        Ok(()) => {
            println!(
                "\n{} run(s) each, medians; server on CPU {}, load on CPU {}, relay unpinned; {}; took {:.0} s.",
                plan.repeats,
                server_cpu.map_or("any".into(), |c| c.to_string()),
                load_cpu.map_or("any".into(), |c| c.to_string()),
                machine(),
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench --lossy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Starts every server the group's rows need, measures every (server,
/// point) `repeats` times round-robin, stops the servers; returns their stop times.
fn run_family(
    family: Family,
    rows: &[Row],
    env: &Env<'_>,
    load_env: &LoadEnv<'_>,
    repeats: usize,
    results: &mut Results,
) -> Result<Vec<(String, String)>, String> {
    let mut points: Vec<(Server, Load)> = Vec::new();
    for row in rows {
        for server in [row.ours, row.baseline] {
            if !points.contains(&(server, row.load)) {
                points.push((server, row.load));
            }
        }
    }
    let mut servers: Vec<Server> = Vec::new();
    for (server, _) in &points {
        if !servers.contains(server) {
            servers.push(*server);
        }
    }
    let mut running: Vec<Running> = Vec::new();
    for (index, server) in servers.iter().enumerate() {
        if server.listen == Listen::Tap {
            let tap = Tap::new(index);
            let ns = env.ns.ok_or("a TAP server outside the namespace")?;
            ns.add_tap(&tap.dev, &tap.kernel_cidr)?;
        }
        match servers::start(*server, index, env) {
            Ok(r) => {
                eprintln!(
                    "[{}] {} listening on {} (pid {})",
                    family.name(),
                    server.name,
                    r.addr,
                    r.pid
                );
                running.push(r);
            }
            Err(e) => {
                eprintln!("[{}] {}: {e}", family.name(), server.name);
                for (s, load) in &points {
                    if s == server {
                        results.add(s, *load, Err(format!("server did not start: {e}")));
                    }
                }
            }
        }
    }
    for rep in 1..=repeats {
        for (server, load) in &points {
            let Some(r) = running.iter().find(|r| r.server == *server) else {
                continue;
            };
            let sample = measure::run(*load, r, load_env);
            match &sample {
                Ok(s) => eprintln!(
                    "[{}] {rep}/{repeats} {} {}: {:.1} {} p50 {} µs p99 {} µs, server CPU {:.1} µs/{}",
                    family.name(),
                    server.name,
                    load.label(),
                    s.rate,
                    load.unit().0,
                    s.p50_us,
                    s.p99_us,
                    s.cpu_us,
                    load.unit().1
                ),
                Err(e) => eprintln!(
                    "[{}] {rep}/{repeats} {} {}: FAILED: {e} (log: {})",
                    family.name(),
                    server.name,
                    load.label(),
                    r.log().display()
                ),
            }
            results.add(server, *load, sample);
        }
    }
    let mut stops = Vec::new();
    for r in running {
        let name = format!("{} {}", family.name(), r.server.name);
        let shown = match r.stop() {
            Ok(took) => format!("{:.2} ms", took.as_secs_f64() * 1e3),
            Err(e) => format!("FAILED: {e}"),
        };
        stops.push((name, shown));
    }
    Ok(stops)
}

/// The rows `--only` keeps (all without it).
fn selected(only: &[String]) -> Vec<Row> {
    let filters: Vec<String> = only
        .iter()
        .map(|f| f.trim().to_lowercase())
        .filter(|f| !f.is_empty())
        .collect();
    matrix::rows()
        .into_iter()
        .filter(|row| {
            filters.is_empty()
                || filters.iter().any(|f| {
                    row.ours.family.name() == f
                        || row.ours.name.to_lowercase().contains(f.as_str())
                        || row.baseline.name.to_lowercase().contains(f.as_str())
                        || row.load.label() == *f
                })
        })
        .collect()
}

fn drop_rows(
    rows: &mut Vec<Row>,
    skipped: &mut Vec<String>,
    unusable: impl Fn(&Server) -> bool,
    why: &str,
) {
    let before = rows.len();
    rows.retain(|r| !unusable(&r.ours) && !unusable(&r.baseline));
    if rows.len() < before {
        eprintln!("bench: {why}");
        skipped.push(why.to_string());
    }
}

fn python_available(python: &str) -> Result<(), String> {
    match Command::new(python)
        .args(["-c", "import socketserver"])
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "`{python} -c 'import socketserver'` failed: {}",
            out.status
        )),
        Err(e) => Err(format!("{python} not runnable: {e}")),
    }
}

/// "N CPUs, MODEL" from /proc/cpuinfo.
fn machine() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let n = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{n} CPUs, {model}")
}
