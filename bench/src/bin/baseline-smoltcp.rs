//! Baseline: a hand-written smoltcp TCP echo on a TAP device, with no
//! socketserver code: one poll loop over a few listening sockets, each
//! listening again after its connection closes. The settings match what
//! `echo_server --transport smoltcp-tcp` uses (64 KiB buffers per direction,
//! no delayed ACK, no Nagle) so the comparison measures the library.
//!
//! Run it inside a network namespace that holds the TAP device (the bench
//! driver creates one); it never creates or configures interfaces itself.

use std::os::unix::io::AsRawFd;

use clap::Parser;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Medium, TunTapInterface, wait as phy_wait};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpCidr};
use socketserver_bench::{announce, die};

/// Per-direction buffer of each socket, as `echo_server` gives its pool.
const TCP_BUF: usize = 65536;

#[derive(Debug, Parser)]
#[command(about = "Baseline: hand-written smoltcp echo over TAP")]
struct Cli {
    /// The TAP device (it must exist: opening a missing name would create one).
    #[arg(long, value_name = "NAME")]
    tap: String,
    /// The stack's address, A.B.C.D/NN.
    #[arg(long, value_name = "A.B.C.D/NN", value_parser = parse_cidr)]
    ip: IpCidr,
    /// The echo port.
    #[arg(long, default_value_t = 7)]
    port: u16,
    /// Listening sockets (connections served at once).
    #[arg(long, default_value_t = 16)]
    sockets: usize,
}

fn parse_cidr(text: &str) -> Result<IpCidr, String> {
    let bad = || format!("{text}: not A.B.C.D/NN");
    let (addr, prefix) = text.split_once('/').ok_or_else(bad)?;
    let addr: std::net::Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(bad)?;
    Ok(IpCidr::new(addr.into(), prefix))
}

fn main() {
    let cli = Cli::parse();
    if std::fs::metadata(format!("/sys/class/net/{}", cli.tap)).is_err() {
        die(
            "baseline-smoltcp",
            format!("{}: no such device in this namespace", cli.tap),
        );
    }
    let mut device = TunTapInterface::new(&cli.tap, Medium::Ethernet)
        .unwrap_or_else(|e| die(&format!("baseline-smoltcp: {}", cli.tap), e));
    let fd = device.as_raw_fd();
    let mut config = Config::new(EthernetAddress([0x02, 0x62, 0x61, 0x73, 0x65, 0x01]).into());
    config.random_seed = u64::from(std::process::id());
    let mut iface = Interface::new(config, &mut device, Instant::now());
    iface.update_ip_addrs(|addrs| {
        if addrs.push(cli.ip).is_err() {
            die("baseline-smoltcp", "address table full");
        }
    });
    let mut sockets = SocketSet::new(Vec::new());
    let handles: Vec<SocketHandle> = (0..cli.sockets.max(1))
        .map(|_| {
            let mut socket = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; TCP_BUF]),
                tcp::SocketBuffer::new(vec![0; TCP_BUF]),
            );
            socket.set_ack_delay(None);
            socket.set_nagle_enabled(false);
            sockets.add(socket)
        })
        .collect();
    announce(&format!("{}:{}", cli.ip.address(), cli.port))
        .unwrap_or_else(|e| die("baseline-smoltcp: stdout", e));
    let mut scratch = vec![0u8; TCP_BUF];
    loop {
        iface.poll(Instant::now(), &mut device, &mut sockets);
        for &handle in &handles {
            serve(
                sockets.get_mut::<tcp::Socket>(handle),
                cli.port,
                &mut scratch,
            );
        }
        // Sockets with data to send ask for an immediate poll (delay 0).
        let delay = iface.poll_delay(Instant::now(), &sockets);
        if let Err(e) = phy_wait(fd, delay) {
            die("baseline-smoltcp: wait", e);
        }
    }
}

/// One step of one socket: listen when closed, echo what fits, close after
/// the peer's EOF once everything is echoed.
fn serve(socket: &mut tcp::Socket<'_>, port: u16, scratch: &mut [u8]) {
    if !socket.is_open() {
        if let Err(e) = socket.listen(port) {
            eprintln!("baseline-smoltcp: listen: {e}");
        }
        return;
    }
    while socket.can_recv() {
        let room = socket.send_capacity() - socket.send_queue();
        if room == 0 {
            break;
        }
        let take = room.min(scratch.len());
        let n = match socket.recv_slice(&mut scratch[..take]) {
            Ok(n) if n > 0 => n,
            _ => break,
        };
        // `room` bytes fit, so the whole slice is queued.
        let _ = socket.send_slice(&scratch[..n]);
    }
    if socket.state() == tcp::State::CloseWait && socket.recv_queue() == 0 {
        socket.close();
    }
}
