//! smoltcp `phy::Device` for the LM3S6965 Ethernet controller, as QEMU's
//! `stellaris_enet` model (hw/net/stellaris_enet.c) implements it.
//!
//! The controller has no DMA: frames go through a 32-bit FIFO register
//! (`DATA`), so the driver copies each frame between the FIFO and a buffer it
//! owns. Polled, one frame at a time; the only interrupt use is waking the CPU
//! from `wfi` (see `main.rs`).
//!
//! FIFO framing (what the QEMU model does, matching the datasheet):
//! - RX: the first word's low 16 bits hold a length that counts the 2 length
//!   bytes, the frame (destination MAC .. payload) and the 4-byte FCS. The
//!   frame starts at byte 2 of the first word; the controller pops words until
//!   that many bytes are read, then `NP` (frames pending) drops by one. A frame
//!   must therefore be read to its last word even when it is dropped.
//! - TX: the first word's low 16 bits hold the *payload* length, i.e. the frame
//!   length minus the 14-byte Ethernet header; its high 16 bits are the first
//!   two frame bytes. Then the rest of the frame, 4 bytes a word, little
//!   endian. Writing `NEWTX` to `TR` sends it; the hardware adds padding
//!   (`PADEN`) and the FCS (`CRC`), and clears `NEWTX` when the FIFO is free.

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::EthernetAddress;

use crate::regs::Reg;

/// Base of the Ethernet MAC registers.
const BASE: Reg = Reg::at(0x4004_8000);
/// Raw interrupt status (read) / interrupt acknowledge (write).
const RIS_IACK: Reg = BASE.offset(0x00);
/// Interrupt mask: which RIS bits drive the NVIC line (IRQ 42).
const IM: Reg = BASE.offset(0x04);
const RCTL: Reg = BASE.offset(0x08);
const TCTL: Reg = BASE.offset(0x0c);
const DATA: Reg = BASE.offset(0x10);
/// Individual address: MAC bytes 0..4 (IA0) and 4..6 (IA1), little endian.
const IA0: Reg = BASE.offset(0x14);
const IA1: Reg = BASE.offset(0x18);
/// TX threshold; 0x3f disables early transmit, so only `TR` starts a send.
const THR: Reg = BASE.offset(0x1c);
/// Number of complete frames waiting in the RX FIFO.
const NP: Reg = BASE.offset(0x34);
/// Transmission request.
const TR: Reg = BASE.offset(0x38);

/// System control: run-mode clock gating 2, where the EMAC and PHY clocks are.
const SYSCTL_RCGC2: Reg = Reg::at(0x400f_e108);
const RCGC2_EMAC0: u32 = 1 << 28;
const RCGC2_EPHY0: u32 = 1 << 30;

/// Interrupt bits (RIS, IACK, IM).
pub const INT_RX: u32 = 0x01;
const INT_ALL: u32 = 0x7f;

const RCTL_RXEN: u32 = 0x01;
const RCTL_BADCRC: u32 = 0x08;
const RCTL_RSTFIFO: u32 = 0x10;

const TCTL_TXEN: u32 = 0x01;
const TCTL_PADEN: u32 = 0x02;
const TCTL_CRC: u32 = 0x04;
const TCTL_DUPLEX: u32 = 0x08;

const TR_NEWTX: u32 = 0x01;
const THR_DISABLED: u32 = 0x3f;

/// NVIC number of the Ethernet controller's interrupt on this chip.
pub const IRQ_NUMBER: u16 = 42;

/// Largest frame handled: 1500-byte MTU plus the 14-byte header (no VLAN tag,
/// no FCS: the hardware strips nothing, we just don't copy it).
pub const MAX_FRAME: usize = 1514;
const ETH_HEADER: usize = 14;
/// Bytes in the RX length word besides the frame: 2 length bytes + 4 FCS.
const RX_OVERHEAD: usize = 6;

/// The controller plus one frame buffer per direction (no heap, no DMA).
pub struct StellarisEnet {
    rx_buf: [u8; MAX_FRAME],
    tx_buf: [u8; MAX_FRAME],
    /// Frames dropped because they were malformed or longer than `MAX_FRAME`.
    pub rx_dropped: u32,
}

impl StellarisEnet {
    /// Takes the controller: gates its clocks on, programs the MAC address and
    /// enables RX and TX with hardware padding and FCS. Call once.
    pub fn new(mac: EthernetAddress) -> Self {
        // Real silicon starts with the EMAC/PHY clocks gated off; QEMU ignores
        // RCGC2 (stores it only), so this is for boards, harmless here.
        SYSCTL_RCGC2.set_bits(RCGC2_EMAC0 | RCGC2_EPHY0);
        // Let the clock gate settle: the datasheet asks for a few cycles
        // before the first access to a newly enabled peripheral.
        cortex_m::asm::delay(16);

        RCTL.write(0);
        TCTL.write(0);
        IM.write(0);
        RIS_IACK.write(INT_ALL);

        let m = mac.0;
        IA0.write(u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
        IA1.write(u32::from_le_bytes([m[4], m[5], 0, 0]));

        THR.write(THR_DISABLED);
        // Full duplex: we do not read the PHY's negotiation result; QEMU ignores
        // the bit, and the EVB's PHY negotiates full duplex with a switch.
        TCTL.write(TCTL_TXEN | TCTL_PADEN | TCTL_CRC | TCTL_DUPLEX);
        // Flush anything the FIFO holds, then receive. No AMUL/PRMS: IPv4 needs
        // only unicast to our address and broadcast (ARP).
        RCTL.write(RCTL_RSTFIFO | RCTL_BADCRC);
        RCTL.write(RCTL_RXEN | RCTL_BADCRC);

        StellarisEnet {
            rx_buf: [0; MAX_FRAME],
            tx_buf: [0; MAX_FRAME],
            rx_dropped: 0,
        }
    }

    /// Whether a received frame waits in the FIFO.
    pub fn rx_pending(&self) -> bool {
        NP.read() != 0
    }

    /// Acknowledges the RX interrupt, so that the next arriving frame raises it
    /// again (QEMU sets RIS.RX per frame and never clears it by itself).
    pub fn ack_rx_interrupt(&self) {
        RIS_IACK.write(INT_RX);
    }

    /// Lets a received frame raise the interrupt line (to wake `wfi`).
    pub fn unmask_rx_interrupt(&self) {
        IM.write(INT_RX);
    }

    /// Masks every controller interrupt; the interrupt handler calls this so
    /// that the level-triggered line drops until the main loop re-arms it.
    pub fn mask_interrupts() {
        IM.write(0);
    }

    /// Pops one frame from the RX FIFO into `rx_buf`. Returns its length, or
    /// `None` when no frame waits or the frame was dropped.
    fn read_frame(&mut self) -> Option<usize> {
        if NP.read() == 0 {
            return None;
        }
        let first = DATA.read();
        let total = (first & 0xffff) as usize;
        let words = total.div_ceil(4);
        let frame_len = total.saturating_sub(RX_OVERHEAD);
        let keep = (ETH_HEADER..=MAX_FRAME).contains(&frame_len);
        if !keep {
            // Still pop every word, or the next "frame" would start mid-frame.
            for _ in 1..words {
                let _ = DATA.read();
            }
            self.rx_dropped = self.rx_dropped.wrapping_add(1);
            return None;
        }
        // Bytes 2 and 3 of the first word are the first two frame bytes.
        let [_, _, b0, b1] = first.to_le_bytes();
        self.rx_buf[0] = b0;
        self.rx_buf[1] = b1;
        let mut at = 2;
        for _ in 1..words {
            let bytes = DATA.read().to_le_bytes();
            // The last words carry the FCS and padding: copy only frame bytes.
            let n = bytes.len().min(frame_len.saturating_sub(at));
            self.rx_buf[at..at + n].copy_from_slice(&bytes[..n]);
            at += n;
        }
        Some(frame_len)
    }
}

/// Writes one frame to the TX FIFO and starts its transmission.
fn send_frame(frame: &[u8]) {
    if frame.len() < ETH_HEADER {
        return; // smoltcp never builds one; the hardware would reject it
    }
    // The FIFO holds one frame; wait until the previous one is on the wire.
    // QEMU sends synchronously, so this never spins there; on silicon it is
    // bounded by one frame time at 10 Mbit/s (~1.2 ms).
    while TR.read() & TR_NEWTX != 0 {}
    let payload_len = (frame.len() - ETH_HEADER) as u32;
    DATA.write(payload_len | u32::from(frame[0]) << 16 | u32::from(frame[1]) << 24);
    for chunk in frame[2..].chunks(4) {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        DATA.write(u32::from_le_bytes(word));
    }
    TR.write(TR_NEWTX);
}

pub struct RxToken<'a> {
    frame: &'a [u8],
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.frame)
    }
}

pub struct TxToken<'a> {
    buf: &'a mut [u8; MAX_FRAME],
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        // smoltcp asks for at most `max_transmission_unit` bytes (capabilities).
        let len = len.min(MAX_FRAME);
        let frame = &mut self.buf[..len];
        let result = f(frame);
        send_frame(frame);
        result
    }
}

impl phy::Device for StellarisEnet {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        // Drain dropped frames here so one bad frame does not hide good ones.
        loop {
            if NP.read() == 0 {
                return None;
            }
            if let Some(len) = self.read_frame() {
                return Some((
                    RxToken {
                        frame: &self.rx_buf[..len],
                    },
                    TxToken {
                        buf: &mut self.tx_buf,
                    },
                ));
            }
        }
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        Some(TxToken {
            buf: &mut self.tx_buf,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME;
        // smoltcp caps the advertised TCP window at burst size x MSS. QEMU's
        // model queues 31 frames, so no cap. Silicon's 2 KiB RX FIFO holds about
        // one full-size frame: a board port should set `Some(1)` (or accept
        // overruns and retransmits) unless it drains the FIFO from the ISR.
        caps.max_burst_size = None;
        caps
    }
}
