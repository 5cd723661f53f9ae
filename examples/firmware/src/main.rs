//! Echo server firmware for QEMU's lm3s6965evb (Cortex-M3, 256 KiB flash,
//! 64 KiB RAM, Stellaris Ethernet): smoltcp on a hand-written driver, all
//! storage static, no heap. Address 192.168.69.1/24; TCP and UDP echo on 7.
//!
//! The main loop polls the interface, serves every socket without blocking,
//! then sleeps (`wfi`) until smoltcp's next deadline or a received frame.
//!
//! Boot it with a TAP device (see tests/firmware_qemu.rs of the root package):
//! `qemu-system-arm -M lm3s6965evb -nographic -semihosting -kernel IMAGE
//!  -nic tap,ifname=tap0,script=no,downscript=no,model=stellaris`

#![no_std]
#![no_main]

mod clock;
mod echo;
mod regs;
mod stellaris_enet;

use core::ptr::addr_of_mut;

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;
use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::hprintln;
use panic_semihosting as _;
use smoltcp::iface::{Config, Interface, SocketSet, SocketStorage};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

use clock::Clock;
use echo::Echo;
use stellaris_enet::StellarisEnet;

/// Locally administered (bit 1 of the first byte), unicast, fixed.
const MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
const IP: IpCidr = IpCidr::new(IpAddress::v4(192, 168, 69, 1), 24);

// Buffer sizes: they set the RAM figure. A TCP socket's receive buffer is the
// window it advertises; 4 KiB is ~2.8 full segments, enough to keep a LAN
// client streaming while other connections are served.
const TCP_SOCKETS: usize = 4;
const TCP_RX: usize = 4096;
const TCP_TX: usize = 4096;
const UDP_PACKETS: usize = 8;
const UDP_PAYLOAD: usize = 4096;

/// Every buffer the stack uses, handed out exactly once. Byte buffers and
/// socket slots live in two statics on purpose: an all-zero static goes to
/// .bss (RAM only), while one with any nonzero byte (smoltcp's empty slot and
/// metadata values are not all zero) goes to .data and costs its full size in
/// flash too, for the initial image.
struct Buffers {
    tcp_rx: [[u8; TCP_RX]; TCP_SOCKETS],
    tcp_tx: [[u8; TCP_TX]; TCP_SOCKETS],
    udp_rx: [u8; UDP_PAYLOAD],
    udp_tx: [u8; UDP_PAYLOAD],
}

struct Slots {
    sockets: [SocketStorage<'static>; TCP_SOCKETS + 1],
    udp_rx_meta: [udp::PacketMetadata; UDP_PACKETS],
    udp_tx_meta: [udp::PacketMetadata; UDP_PACKETS],
}

static mut BUFFERS: Buffers = Buffers {
    tcp_rx: [[0; TCP_RX]; TCP_SOCKETS],
    tcp_tx: [[0; TCP_TX]; TCP_SOCKETS],
    udp_rx: [0; UDP_PAYLOAD],
    udp_tx: [0; UDP_PAYLOAD],
};

static mut SLOTS: Slots = Slots {
    sockets: [SocketStorage::EMPTY; TCP_SOCKETS + 1],
    udp_rx_meta: [udp::PacketMetadata::EMPTY; UDP_PACKETS],
    udp_tx_meta: [udp::PacketMetadata::EMPTY; UDP_PACKETS],
};

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
    // Invariant: `take` succeeds on its first call, and this is the only one.
    let core = cortex_m::Peripherals::take().expect("core peripherals taken once");
    let mut clock = Clock::start(core.SYST);

    // SAFETY: `main` runs once and never returns, and nothing else names
    // BUFFERS or SLOTS, so these are the only references to them, for the
    // program's life.
    let (buffers, slots): (&'static mut Buffers, &'static mut Slots) =
        unsafe { (&mut *addr_of_mut!(BUFFERS), &mut *addr_of_mut!(SLOTS)) };
    let Buffers {
        tcp_rx,
        tcp_tx,
        udp_rx,
        udp_tx,
    } = buffers;
    let Slots {
        sockets: socket_storage,
        udp_rx_meta,
        udp_tx_meta,
    } = slots;

    let mut enet = StellarisEnet::new(MAC);
    let mut config = Config::new(HardwareAddress::Ethernet(MAC));
    // Seeds TCP initial sequence numbers and ephemeral ports. No RNG here:
    // a fixed seed is fine for a test image, not for a product.
    config.random_seed = 0x5eed_0001;
    let mut iface = Interface::new(config, &mut enet, clock.now());
    iface.update_ip_addrs(|addrs| {
        // Capacity is at least 1 (smoltcp's iface-max-addr-count default).
        let _ = addrs.push(IP);
    });

    let mut sockets = SocketSet::new(&mut socket_storage[..]);
    let mut tcp_handles = [None; TCP_SOCKETS];
    for ((rx, tx), slot) in tcp_rx
        .iter_mut()
        .zip(tcp_tx.iter_mut())
        .zip(&mut tcp_handles)
    {
        let socket = tcp::Socket::new(
            tcp::SocketBuffer::new(&mut rx[..]),
            tcp::SocketBuffer::new(&mut tx[..]),
        );
        *slot = Some(sockets.add(socket));
    }
    let tcp_handles = tcp_handles.map(|h| h.expect("every slot filled above"));
    let udp_socket = udp::Socket::new(
        udp::PacketBuffer::new(&mut udp_rx_meta[..], &mut udp_rx[..]),
        udp::PacketBuffer::new(&mut udp_tx_meta[..], &mut udp_tx[..]),
    );
    let udp_handle = sockets.add(udp_socket);
    let mut echo = Echo::new(tcp_handles, udp_handle);
    echo.serve(&mut sockets); // listen and bind before the first frame

    // SAFETY: the handler (DefaultHandler) touches only the controller's IM
    // register, which no critical section of the main loop relies on.
    unsafe { NVIC::unmask(EthernetIrq) };
    hprintln!(
        "firmware: echo on {} port {} (tcp x{}, udp)",
        IP,
        echo::PORT,
        TCP_SOCKETS
    );

    let mut logged = 0;
    loop {
        iface.poll(clock.now(), &mut enet, &mut sockets);
        echo.serve(&mut sockets);
        if echo.accepted != logged {
            logged = echo.accepted;
            hprintln!("firmware: connections accepted: {}", logged);
        }
        let now = clock.now();
        match iface.poll_delay(now, &sockets) {
            Some(Duration::ZERO) => {}
            Some(delay) => sleep(&mut clock, &enet, Some(now + delay)),
            None => sleep(&mut clock, &enet, None),
        }
    }
}

/// Sleeps until a frame is waiting or `deadline` passes. SysTick wakes the
/// core every millisecond; a received frame wakes it through IRQ 42.
fn sleep(clock: &mut Clock, enet: &StellarisEnet, deadline: Option<Instant>) {
    loop {
        if enet.rx_pending() || deadline.is_some_and(|d| clock.now() >= d) {
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
