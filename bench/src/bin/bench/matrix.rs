//! What the benchmark compares: every row of the table, and the servers
//! and load points the rows need. Data only; running it is elsewhere.

/// The four groups of the matrix; a group's servers run side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Stream servers over kernel TCP on 127.0.0.1.
    Tcp,
    /// Stream servers over Unix sockets.
    Unix,
    /// Datagram servers over kernel UDP on 127.0.0.1.
    Udp,
    /// smoltcp over TAP devices in a private network namespace.
    Smoltcp,
    /// Behind a lossy link (`bench --lossy`, not part of the matrix).
    Lossy,
}

impl Family {
    pub const ALL: [Family; 4] = [Family::Tcp, Family::Unix, Family::Udp, Family::Smoltcp];

    pub fn name(self) -> &'static str {
        match self {
            Family::Tcp => "tcp",
            Family::Unix => "unix",
            Family::Udp => "udp",
            Family::Smoltcp => "smoltcp",
            Family::Lossy => "lossy",
        }
    }
}

/// How a server process is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Our `echo_server` example with this transport and strategy.
    Ours {
        transport: &'static str,
        strategy: &'static str,
    },
    /// A baseline binary of this crate.
    Baseline(&'static str),
    /// `bench/python/echo_server.py KIND`.
    Python(&'static str),
}

/// Where a server listens; the driver fills in ports, paths and devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// TCP on 127.0.0.1, port chosen by the kernel.
    Tcp,
    /// A Unix stream socket in the run's private directory.
    Unix,
    /// UDP on 127.0.0.1, port chosen by the kernel.
    Udp,
    /// Its own TAP device in the namespace (smoltcp servers).
    Tap,
}

/// One server of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Server {
    /// Short name, unique within its family, used in the table.
    pub name: &'static str,
    pub family: Family,
    pub kind: Kind,
    pub listen: Listen,
}

/// One load point, as `loadgen` runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// `rr -c N`: persistent connections, 64-byte round trips.
    Rr(usize),
    /// `conn -c N`: a connection per 64-byte round trip.
    Conn(usize),
    /// `bulk`: one connection streaming.
    Bulk,
    /// `udp -c N`: 64-byte datagram round trips.
    Udp(usize),
    /// `bulk --mib N`: one connection echoing N MiB (or what it writes
    /// within the run's limit), waiting longer for a stalled read.
    Echo(usize),
}

impl Load {
    pub fn label(self) -> String {
        match self {
            Load::Rr(c) => format!("rr {c}"),
            Load::Conn(c) => format!("conn {c}"),
            Load::Bulk => "bulk".to_string(),
            Load::Udp(c) => format!("udp {c}"),
            Load::Echo(mib) => format!("echo {mib} MiB"),
        }
    }

    /// The unit of the rate, and of CPU time per unit.
    pub fn unit(self) -> (&'static str, &'static str) {
        match self {
            Load::Rr(_) => ("req/s", "req"),
            Load::Conn(_) => ("conn/s", "conn"),
            Load::Bulk | Load::Echo(_) => ("MiB/s", "MiB"),
            Load::Udp(_) => ("dgram/s", "dgram"),
        }
    }
}

/// One row of the table: ours against a baseline on one load point.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub ours: Server,
    pub baseline: Server,
    pub load: Load,
    /// The target for ours/baseline throughput, if it names one.
    pub target: Option<f64>,
}

const fn ours(
    name: &'static str,
    family: Family,
    transport: &'static str,
    strategy: &'static str,
    listen: Listen,
) -> Server {
    Server {
        name,
        family,
        kind: Kind::Ours {
            transport,
            strategy,
        },
        listen,
    }
}

const fn base(name: &'static str, family: Family, kind: Kind, listen: Listen) -> Server {
    Server {
        name,
        family,
        kind,
        listen,
    }
}

/// Every row of the full matrix, in table order.
pub fn rows() -> Vec<Row> {
    use Family::{Smoltcp, Tcp, Unix};
    use Load::{Bulk, Conn, Rr};
    let mut rows = Vec::new();
    let mut row = |ours: Server, baseline: Server, load: Load, target: Option<f64>| {
        rows.push(Row {
            ours,
            baseline,
            load,
            target,
        });
    };
    for (family, listen, transport) in [(Tcp, Listen::Tcp, "tcp"), (Unix, Listen::Unix, "unix")] {
        let threading = ours("threading", family, transport, "threading", listen);
        let forking = ours("forking", family, transport, "forking", listen);
        let multiplexed = ours("multiplexed", family, transport, "multiplexed", listen);
        let threads = base(
            "baseline-threads",
            family,
            Kind::Baseline("baseline-threads"),
            listen,
        );
        let fork = base(
            "baseline-fork",
            family,
            Kind::Baseline("baseline-fork"),
            listen,
        );
        let tokio = base(
            "baseline-tokio",
            family,
            Kind::Baseline("baseline-tokio"),
            listen,
        );
        for load in [Rr(8), Conn(4), Bulk] {
            row(threading, threads, load, Some(0.95));
        }
        for load in [Rr(8), Conn(4), Bulk] {
            row(forking, fork, load, Some(0.95));
        }
        for load in [Rr(8), Conn(4), Bulk] {
            row(multiplexed, tokio, load, Some(1.0));
        }
        if family == Tcp {
            let py_threading = base(
                "python ThreadingTCPServer",
                family,
                Kind::Python("threading-tcp"),
                listen,
            );
            let py_forking = base(
                "python ForkingTCPServer",
                family,
                Kind::Python("forking-tcp"),
                listen,
            );
            row(threading, py_threading, Conn(4), Some(2.0));
            row(forking, py_forking, Conn(4), Some(7.0));
        } else {
            let py_unix = base(
                "python ThreadingUnixStreamServer",
                family,
                Kind::Python("threading-unix"),
                listen,
            );
            row(threading, py_unix, Conn(4), None);
        }
    }
    let udp_sync = ours("sync", Family::Udp, "udp", "sync", Listen::Udp);
    row(
        udp_sync,
        base(
            "baseline-udp",
            Family::Udp,
            Kind::Baseline("baseline-udp"),
            Listen::Udp,
        ),
        Load::Udp(4),
        None,
    );
    row(
        udp_sync,
        base(
            "python UDPServer",
            Family::Udp,
            Kind::Python("udp"),
            Listen::Udp,
        ),
        Load::Udp(4),
        Some(1.5),
    );

    let sm_sync = ours("smoltcp sync", Smoltcp, "smoltcp-tcp", "sync", Listen::Tap);
    let sm_mux = ours(
        "smoltcp multiplexed",
        Smoltcp,
        "smoltcp-tcp",
        "multiplexed",
        Listen::Tap,
    );
    let sm_base = base(
        "baseline-smoltcp",
        Smoltcp,
        Kind::Baseline("baseline-smoltcp"),
        Listen::Tap,
    );
    // The kernel's own loopback, inside the same namespace: the reference
    // for what TAP plus a userspace stack cost on bulk transfers.
    let loopback = base(
        "kernel loopback (baseline-threads)",
        Smoltcp,
        Kind::Baseline("baseline-threads"),
        Listen::Tcp,
    );
    // `sync` serves one connection at a time, so it meets the baseline on
    // one client; with 4 clients the others queue (that is what sync means).
    for load in [Rr(1), Conn(1), Conn(4)] {
        row(sm_sync, sm_base, load, Some(0.95));
    }
    for load in [Rr(8), Conn(4)] {
        row(sm_mux, sm_base, load, Some(0.95));
    }
    row(sm_mux, sm_base, Bulk, None);
    row(sm_sync, loopback, Bulk, Some(0.5));
    row(sm_mux, loopback, Bulk, Some(0.5));
    rows
}
