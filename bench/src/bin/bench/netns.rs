//! The private network namespace of the smoltcp points: created by the
//! driver, holding its TAP devices, removed when the guard drops (also on
//! error). Nothing here ever touches the host's interfaces: every `ip`
//! command names the namespace (`ip -n NAME`), and servers and load run
//! inside it (`ip netns exec NAME`).

use std::fs::OpenOptions;
use std::process::Command;

/// Prefix of the namespaces this driver creates; the suffix is its pid.
const PREFIX: &str = "ssbench-";

/// A namespace that exists as long as this value does.
#[derive(Debug)]
pub struct Namespace {
    name: String,
}

/// Whether this process may create namespaces and TAP devices; `Err` says why not.
pub fn privileges() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("not root".into());
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|e| format!("cannot open /dev/net/tun: {e}"))?;
    ip(&["-V"]).map_err(|e| format!("iproute2 `ip` not usable: {e}"))
}

impl Namespace {
    /// Creates `ssbench-PID` with loopback up and no TIME-WAIT on the
    /// client side: the conn points open tens of thousands of connections
    /// to one port, and smoltcp sends no TCP timestamps, so `tcp_tw_reuse`
    /// cannot recycle the ports and the kernel's port search slows to a
    /// crawl once 28,000 of them wait. On loopback the host's default
    /// (`tcp_tw_reuse = 2`) already recycles them. These sysctls belong to
    /// the namespace; the host's are untouched.
    pub fn create() -> Result<Namespace, String> {
        let ns = Namespace::create_named("")?;
        let sysctls = run(ns.command("sysctl").args([
            "-q",
            "-w",
            "net.ipv4.tcp_max_tw_buckets=0",
            "net.ipv4.ip_local_port_range=1024 65535",
        ]));
        if let Err(e) = sysctls {
            eprintln!("bench: warning: conn points over TAP may run out of ports: {e}");
        }
        Ok(ns)
    }

    /// Creates `ssbench-PID` followed by `suffix`, with loopback up.
    pub fn create_named(suffix: &str) -> Result<Namespace, String> {
        remove_stale();
        let name = format!("{PREFIX}{}{suffix}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = Namespace { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds bridge `bridge`, forwarding at once (no STP delay), with the
    /// kernel's address `cidr` on it, up.
    pub fn add_bridge(&self, bridge: &str, cidr: &str) -> Result<(), String> {
        let n = self.name.as_str();
        ip(&[
            "-n",
            n,
            "link",
            "add",
            bridge,
            "type",
            "bridge",
            "forward_delay",
            "0",
        ])?;
        ip(&["-n", n, "addr", "add", cidr, "dev", bridge])?;
        ip(&["-n", n, "link", "set", bridge, "up"])
    }

    /// Adds TAP device `dev` as a port of `bridge` (no address of its own), up.
    pub fn add_bridged_tap(&self, dev: &str, bridge: &str) -> Result<(), String> {
        let n = self.name.as_str();
        ip(&["-n", n, "tuntap", "add", "dev", dev, "mode", "tap"])?;
        ip(&["-n", n, "link", "set", dev, "master", bridge])?;
        ip(&["-n", n, "link", "set", dev, "up"])
    }

    /// Adds TAP device `dev` with the kernel side at `kernel_cidr`, up.
    pub fn add_tap(&self, dev: &str, kernel_cidr: &str) -> Result<(), String> {
        ip(&["-n", &self.name, "tuntap", "add", "dev", dev, "mode", "tap"])?;
        ip(&["-n", &self.name, "addr", "add", kernel_cidr, "dev", dev])?;
        ip(&["-n", &self.name, "link", "set", dev, "up"])
    }

    /// A command that runs `program` inside the namespace. `ip netns exec`
    /// execs the program in place, so the child's pid is the program's.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("bench: could not remove namespace {}: {e}", self.name);
        }
    }
}

/// Removes namespaces left by an earlier run that was killed (its pid is gone).
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        // `ssbench-PID` or `ssbench-PID-SUFFIX`.
        let pid = rest.split('-').next().unwrap_or(rest);
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        eprintln!("bench: removing stale namespace {name}");
        let _ = ip(&["netns", "del", name]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    run(&mut cmd)
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| format!("{shown}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
