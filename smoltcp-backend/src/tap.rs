//! The std glue: a TAP device with optional pcap capture, a monotonic clock,
//! and an idle that sleeps on the TAP file descriptor.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::io::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::string::String;
use std::time::SystemTime;

use core::time::Duration;

use smoltcp::iface::{Config, Interface};
use smoltcp::phy::{Medium, PcapMode, PcapSink, PcapWriter, TunTapInterface};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};
use socketserver_core::time::{Clock, Instant};

use crate::config::to_smol;
use crate::idle::Idle;
use crate::stack::Stack;

/// The MAC address used unless you choose one: locally administered
/// (`02:` prefix), unicast, and the same on every run so captures compare.
pub const DEFAULT_MAC: EthernetAddress = EthernetAddress([0x02, 0x73, 0x6f, 0x63, 0x6b, 0x01]);

/// `std::time::Instant` as core's clock: microseconds since the clock was made.
#[derive(Debug, Clone, Copy)]
pub struct StdClock {
    origin: std::time::Instant,
}

impl Default for StdClock {
    fn default() -> Self {
        Self::new()
    }
}

impl StdClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: std::time::Instant::now(),
        }
    }
}

impl Clock for StdClock {
    fn now(&self) -> Instant {
        let micros = self.origin.elapsed().as_micros();
        Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }
}

/// Idles by sleeping until a file descriptor (the TAP device) is readable,
/// with `select(2)` through `smoltcp::phy::wait`.
#[derive(Debug, Clone, Copy)]
pub struct FdIdle {
    fd: RawFd,
}

impl FdIdle {
    /// Sleeps on `device`'s descriptor; keep the device alive as long as this.
    pub fn new(device: &impl AsRawFd) -> Self {
        Self {
            fd: device.as_raw_fd(),
        }
    }
}

impl Idle for FdIdle {
    fn idle(&mut self, timeout: Option<Duration>) {
        // EINTR (a signal) just ends the sleep early, which callers allow.
        let _ = smoltcp::phy::wait(self.fd, timeout.map(to_smol));
    }
}

/// A pcap sink that writes to a file, or nowhere.
#[derive(Debug, Default)]
pub struct Capture {
    file: Option<BufWriter<File>>,
}

impl Capture {
    /// Captures nothing.
    pub fn none() -> Self {
        Self { file: None }
    }

    /// Captures to a new file at `path` (open it with Wireshark or tshark).
    pub fn to_file(path: &std::path::Path) -> io::Result<Self> {
        Ok(Self {
            file: Some(BufWriter::new(File::create(path)?)),
        })
    }
}

impl PcapSink for Capture {
    fn write(&mut self, data: &[u8]) {
        if let Some(file) = &mut self.file {
            // A capture error must not take the network down: the capture stops short.
            let _ = file.write_all(data);
        }
    }

    fn flush(&mut self) {
        if let Some(file) = &mut self.file {
            let _ = Write::flush(file);
        }
    }
}

/// The device of a TAP stack: the TAP interface behind an optional capture.
pub type TapDevice = PcapWriter<TunTapInterface, Capture>;

/// A stack on a TAP device, as [`TapConfig::open`] builds it.
pub type TapStack<'a> = Stack<'a, TapDevice, StdClock, FdIdle>;

/// How to open a TAP device for a stack.
#[derive(Debug, Clone)]
pub struct TapConfig {
    /// The TAP device's name. Create and address it first (`ip tuntap add dev
    /// NAME mode tap`); opening a name that does not exist creates a new,
    /// unconfigured device, as `TUNSETIFF` does.
    pub name: String,
    /// The stack's own address and prefix, e.g. `192.168.69.1/24`.
    pub cidr: IpCidr,
    /// The stack's MAC address.
    pub mac: EthernetAddress,
    /// Where to write a pcap capture of every frame, if anywhere.
    pub pcap: Option<PathBuf>,
    /// A default gateway, if the stack must reach beyond its subnet.
    pub gateway: Option<IpAddress>,
}

impl TapConfig {
    /// A configuration with [`DEFAULT_MAC`], no capture and no gateway.
    pub fn new(name: &str, cidr: IpCidr) -> Self {
        Self {
            name: name.into(),
            cidr,
            mac: DEFAULT_MAC,
            pcap: None,
            gateway: None,
        }
    }

    /// Opens the TAP device and builds the interface: the parts for
    /// [`Stack::new`], with the clock and idle to pass along.
    pub fn open(&self) -> io::Result<(Interface, TapDevice, StdClock, FdIdle)> {
        if !self.mac.is_unicast() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                std::format!("MAC address {} is not unicast", self.mac),
            ));
        }
        let tap = TunTapInterface::new(&self.name, Medium::Ethernet).map_err(|e| {
            io::Error::new(
                e.kind(),
                std::format!("TAP device {}: cannot open: {e}", self.name),
            )
        })?;
        let idle = FdIdle::new(&tap);
        let capture = match &self.pcap {
            Some(path) => Capture::to_file(path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    std::format!("pcap file {}: cannot create: {e}", path.display()),
                )
            })?,
            None => Capture::none(),
        };
        let clock = StdClock::new();
        let now = smoltcp::time::Instant::from_micros(0);
        let mut device = PcapWriter::new(tap, capture, PcapMode::Both);
        let mut config = Config::new(HardwareAddress::Ethernet(self.mac));
        config.random_seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0x5eed, |d| d.as_nanos() as u64);
        let mut iface = Interface::new(config, &mut device, now);
        let mut full = false;
        iface.update_ip_addrs(|addrs| full = addrs.push(self.cidr).is_err());
        if full {
            return Err(io::Error::other("interface address table full"));
        }
        match self.gateway {
            Some(IpAddress::Ipv4(gw)) => {
                let _ = iface.routes_mut().add_default_ipv4_route(gw);
            }
            Some(IpAddress::Ipv6(gw)) => {
                let _ = iface.routes_mut().add_default_ipv6_route(gw);
            }
            None => {}
        }
        Ok((iface, device, clock, idle))
    }
}
