//! Echo server firmware for QEMU's lm3s6965evb (Cortex-M3, 256 KiB flash,
//! 64 KiB RAM, Stellaris Ethernet): the project's own echo handlers
//! (socketserver-core) served through socketserver-smoltcp on a hand-written
//! driver, all storage static, no heap. Address 192.168.69.1/24; core's
//! async `Echo` on TCP port 7 and its line handler `Upper` on TCP port 8,
//! each under `Multiplexed` (4 connections at once, more wait in the
//! SYN backlog), UDP echo on port 7.
//!
//! The main loop never blocks: each turn polls the stack (whose sockets wake
//! the requests waiting on them), runs the servers' `serve_ready`, polls the stack
//! again, then sleeps (`wfi`) until the stack's next deadline or a received
//! frame (at most a second: idle deadlines are checked on each turn).
//!
//! Boot it with a TAP device (see README.md and tests/firmware_qemu.rs of the
//! root package):
//! `qemu-system-arm -M lm3s6965evb -nographic -semihosting -kernel IMAGE
//!  -nic tap,ifname=tap0,script=no,downscript=no,model=stellaris`

#![no_std]
#![no_main]

mod clock;
mod echo;
mod panic;
mod regs;
mod stellaris_enet;
mod vectors;
mod watermark;

use core::cell::RefCell;
use core::mem::MaybeUninit;
use core::pin::pin;
use core::ptr::addr_of_mut;
use core::time::Duration;

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;
use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::hprintln;
use smoltcp::iface::{Config, Interface, SocketStorage};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};
use socketserver_core::time::Instant;
use socketserver_core::{EchoDatagram, Sequential};
use socketserver_smoltcp::{
    Net, Spin, Stack, SynSlot, TcpStorage, UdpBytes, UdpMeta, tcp_server_with, udp_server_with,
};

use clock::Clock;
use echo::{ECHO_PORT, Hooks, POOL, Service, UPPER_PORT};
use stellaris_enet::StellarisEnet;

/// Locally administered (bit 1 of the first byte), unicast, fixed.
const MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
const IP: IpCidr = IpCidr::new(IpAddress::v4(192, 168, 69, 1), 24);

// Buffer sizes: they set the RAM figure (see README.md). A TCP socket's
// receive buffer is the window it advertises; 2 KiB is ~1.4 full segments,
// for two pools of four sockets in 64 KiB of RAM.
const TCP_RX: usize = 2048;
const TCP_TX: usize = 2048;
/// The line handler's sockets: lines are short, 1 KiB each way is plenty.
/// The `tcp-2k` feature gives them the echo's 2 KiB, the configuration the
/// size goal names (see README.md: it leaves too little RAM for the stack).
const LINE_RX: usize = if cfg!(feature = "tcp-2k") { 2048 } else { 1024 };
const LINE_TX: usize = LINE_RX;
/// The UDP server's packet and reply buffers: the largest datagram an
/// unfragmented 1500-byte IPv4 packet carries (1500 - 20 - 8).
const MAX_DATAGRAM: usize = 1472;
/// UDP socket buffers: up to 8 datagrams, one full-size datagram's bytes in
/// all, per direction. Enough: smoltcp rewinds an empty ring, so a full-size
/// datagram always fits once the previous ones are gone.
const UDP_PACKETS: usize = 8;
const UDP_BYTES: usize = MAX_DATAGRAM;
/// Connection requests held while every pool socket is busy (~150 B each);
/// beyond that a SYN is dropped and the client retransmits it.
const SYN_BACKLOG: usize = 8;
/// Socket set: the two TCP pools and the UDP socket.
const SOCKETS: usize = 2 * POOL + 1;
/// Longest sleep, so the 32-bit millisecond tick is widened often enough.
const MAX_SLEEP: Duration = Duration::from_secs(1);

type FirmwareStack = Stack<'static, StellarisEnet, Clock, Spin>;

// Every buffer the stack uses, handed out exactly once, in `main`. Byte
// buffers are all-zero statics, so they go to .bss (RAM only); a static with
// any nonzero byte would go to .data and cost its size in flash too.
static mut TCP_BUFFERS: TcpStorage<POOL, TCP_RX, TCP_TX> = TcpStorage::new();
static mut UPPER_BUFFERS: TcpStorage<POOL, LINE_RX, LINE_TX> = TcpStorage::new();
static mut UDP_BYTES_RX_TX: UdpBytes<UDP_BYTES> = UdpBytes::new();
static mut DATAGRAMS: [[u8; MAX_DATAGRAM]; 2] = [[0; MAX_DATAGRAM]; 2];
// smoltcp's empty socket slot and datagram metadata are not all zero: these
// are filled at boot instead, so they cost RAM (.bss) but no flash. (That is
// why the UDP socket is built from the backend's `UdpMeta` and `UdpBytes`
// rather than its `UdpStorage`, which holds both in one .data struct.)
static mut SOCKET_SLOTS: MaybeUninit<[SocketStorage<'static>; SOCKETS]> = MaybeUninit::uninit();
static mut UDP_META: MaybeUninit<UdpMeta<UDP_PACKETS>> = MaybeUninit::uninit();
static mut BACKLOG: [SynSlot; SYN_BACKLOG] = [SynSlot::EMPTY; SYN_BACKLOG];
/// The stack (interface, driver with its frame buffers, socket set, SYN
/// gate): written once in `main`, shared by the servers.
static mut STACK: MaybeUninit<RefCell<FirmwareStack>> = MaybeUninit::uninit();

/// The Ethernet controller's NVIC line, for `NVIC::unmask`.
#[derive(Clone, Copy)]
struct EthernetIrq;

// SAFETY: 42 is the Ethernet controller's interrupt number on the LM3S6965
// (and in QEMU's lm3s6965evb), a valid external interrupt of this NVIC.
unsafe impl InterruptNumber for EthernetIrq {
    fn number(self) -> u16 {
        stellaris_enet::IRQ_NUMBER
    }
}

/// Every interrupt without its own handler lands here (no device crate, so
/// cortex-m-rt's vector table points them all at `DefaultHandler`). The
/// Ethernet one only has to wake the core: mask the controller's line so it
/// drops, and the main loop re-arms it before its next sleep.
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn == stellaris_enet::IRQ_NUMBER as i16 {
        StellarisEnet::mask_interrupts();
    }
}

#[entry]
fn main() -> ! {
    watermark::check_room();
    watermark::paint();
    // Invariant: `take` succeeds on its first call, and this is the only one.
    let core = cortex_m::Peripherals::take().expect("core peripherals taken once");
    let clock = Clock::start(core.SYST);

    // SAFETY: `main` runs once and never returns, and nothing else names
    // these statics, so these are the only references to them, for the
    // program's life.
    let (tcp_buffers, upper_buffers, udp_bytes, udp_meta, datagrams, slots, backlog, stack) = unsafe {
        (
            &mut *addr_of_mut!(TCP_BUFFERS),
            &mut *addr_of_mut!(UPPER_BUFFERS),
            &mut *addr_of_mut!(UDP_BYTES_RX_TX),
            &mut *addr_of_mut!(UDP_META),
            &mut *addr_of_mut!(DATAGRAMS),
            &mut *addr_of_mut!(SOCKET_SLOTS),
            &mut *addr_of_mut!(BACKLOG),
            &mut *addr_of_mut!(STACK),
        )
    };

    let slots = slots.write([SocketStorage::EMPTY; SOCKETS]);
    let udp_socket = udp_bytes.socket(udp_meta.write(UdpMeta::new()));

    let mut enet = StellarisEnet::new(MAC);
    let mut config = Config::new(HardwareAddress::Ethernet(MAC));
    // Seeds TCP initial sequence numbers and ephemeral ports. No RNG here:
    // a fixed seed is fine for a test image, not for a product.
    config.random_seed = 0x5eed_0001;
    let boot = smoltcp::time::Instant::from_millis(0);
    let mut iface = Interface::new(config, &mut enet, boot);
    iface.update_ip_addrs(|addrs| {
        // Capacity is at least 1 (smoltcp's iface-max-addr-count default).
        let _ = addrs.push(IP);
    });
    let stack: &'static RefCell<FirmwareStack> = stack.write(RefCell::new(Stack::new(
        iface, enet, slots, backlog, clock, Spin,
    )));

    // The request futures live in main's frame, which never returns.
    let echo_slots = pin!(echo::slots(Service::Echo));
    let upper_slots = pin!(echo::slots(Service::Upper));
    let [packet, reply] = datagrams;
    // Invariant: the socket set holds exactly the two pools and the UDP
    // socket, on distinct ports or protocols, and nothing borrows the
    // stack yet, so every bind succeeds.
    let mut tcp = tcp_server_with(stack, ECHO_PORT, tcp_buffers, echo_slots, Hooks::default())
        .expect("TCP pool fits");
    let mut upper = tcp_server_with(
        stack,
        UPPER_PORT,
        upper_buffers,
        upper_slots,
        Hooks::default(),
    )
    .expect("TCP pool fits");
    let buffers: (&mut [u8], &mut [u8]) = (packet, reply);
    let mut udp = udp_server_with(
        stack,
        ECHO_PORT,
        udp_socket,
        buffers,
        Sequential::new(EchoDatagram),
        Hooks::default(),
    )
    .expect("UDP socket fits");

    // SAFETY: the handler (DefaultHandler) touches only the controller's IM
    // register, which no critical section of the main loop relies on.
    unsafe { NVIC::unmask(EthernetIrq) };
    hprintln!(
        "firmware: echo on {} port {} (tcp x{}, udp), upper on port {} (tcp x{})",
        IP,
        ECHO_PORT,
        POOL,
        UPPER_PORT,
        POOL
    );

    let mut logged = 0;
    loop {
        // Both servers get their turn (`|`, not `||`); if either moved,
        // `poll` returns zero and the loop goes round again before sleeping.
        // Nothing here holds a borrow of the stack, so it is never busy.
        let delay = socketserver_smoltcp::poll_and_serve(stack, || {
            tcp.serve_ready() | upper.serve_ready() | udp.serve_ready()
        })
        .unwrap_or(Some(Duration::ZERO));
        let accepted = tcp.hooks().requests() + upper.hooks().requests();
        if accepted != logged {
            logged = accepted;
            let gate = stack.borrow().gate_stats();
            hprintln!(
                "firmware: connections accepted: {}; SYNs held {} released {} dropped {}; stack peak {} B",
                logged,
                gate.held,
                gate.released,
                gate.dropped,
                watermark::peak()
            );
        }
        if delay == Some(Duration::ZERO) {
            continue;
        }
        let now = stack.borrow().now();
        let deadline = now.saturating_add(delay.unwrap_or(MAX_SLEEP).min(MAX_SLEEP));
        if deadline > now {
            sleep(stack, deadline);
        }
    }
}

/// Sleeps until a frame is waiting or `deadline` passes. SysTick wakes the
/// core every millisecond; a received frame wakes it through IRQ 42.
fn sleep(stack: &RefCell<FirmwareStack>, deadline: Instant) {
    let stack = stack.borrow();
    let enet = stack.device();
    loop {
        if enet.rx_pending() || stack.now() >= deadline {
            return;
        }
        // With interrupts off, re-arm the wake-up and check once more, so a
        // frame arriving in between cannot be slept through: `wfi` still
        // wakes on a pending interrupt while PRIMASK masks it.
        cortex_m::interrupt::free(|_| {
            enet.ack_rx_interrupt();
            if !enet.rx_pending() {
                enet.unmask_rx_interrupt();
                cortex_m::asm::wfi();
            }
        });
        // Interrupts are on again: the pending handlers run here.
    }
}
