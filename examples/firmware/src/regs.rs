//! Memory-mapped register access, kept in one place so that the only unsafe
//! code touching peripherals is the two volatile accesses below.
//!
//! A `Reg` is a fixed address of a 32-bit register that exists on this chip
//! (LM3S6965, as QEMU's lm3s6965evb models it). Registers are built only from
//! the `const` addresses in this crate, so the invariant "address is a valid,
//! aligned, device register" is checked by review of those constants.

use core::ptr;

/// One 32-bit device register.
#[derive(Clone, Copy)]
pub struct Reg(usize);

impl Reg {
    /// `addr` must be the address of a 32-bit register of this chip; all
    /// callers pass constants from the peripheral modules.
    pub const fn at(addr: usize) -> Self {
        Reg(addr)
    }

    /// The register `offset` bytes after this one (for a base + offset map).
    pub const fn offset(self, offset: usize) -> Self {
        Reg(self.0 + offset)
    }

    #[inline(always)]
    pub fn read(self) -> u32 {
        // SAFETY: `self.0` is a 4-byte aligned MMIO register address of this
        // chip (module invariant). Volatile, because the device changes the
        // value and reads may have side effects (the Ethernet DATA FIFO pops).
        unsafe { ptr::read_volatile(self.0 as *const u32) }
    }

    #[inline(always)]
    pub fn write(self, value: u32) {
        // SAFETY: as in `read`; a register write has no effect on Rust-visible
        // memory, only on the device.
        unsafe { ptr::write_volatile(self.0 as *mut u32, value) }
    }

    /// Read-modify-write: set the bits of `mask`. Not atomic; used only during
    /// start-up, before interrupts are enabled.
    pub fn set_bits(self, mask: u32) {
        self.write(self.read() | mask);
    }
}
