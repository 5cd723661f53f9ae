//! Stack high-water mark: how much of the RAM left after the statics the
//! firmware really uses, so the RAM figures in README.md are measured, not
//! guessed.
//!
//! At boot, `paint` fills the free part of the stack (from the end of the
//! statics up to a margin below the current stack pointer) with a pattern;
//! `peak` later finds the lowest word that no longer holds it.

use core::ptr::{addr_of, read_volatile, write_volatile};

use cortex_m_semihosting::debug::{self, EXIT_FAILURE};
use cortex_m_semihosting::hprintln;

const PAINT: u32 = 0xC0FF_EE00;
/// Stack the firmware needs: its measured peak (16,264 bytes, mostly the
/// request slots in `main`'s frame and their construction at boot) and a
/// margin. A build whose statics leave less (the `tcp-2k` feature) would
/// overwrite them with its stack: [`check_room`] stops it at boot instead.
pub const NEEDED: usize = 17 * 1024;
/// Left unpainted below the stack pointer of the caller of `paint`, for
/// `paint`'s own frame.
const MARGIN: usize = 256;

unsafe extern "C" {
    /// End of the statics, where the stack may grow down to (cortex-m-rt).
    static _stack_end: u32;
    /// Top of RAM, where the stack starts (cortex-m-rt).
    static _stack_start: u32;
}

// Only the symbols' addresses are taken, never their values.
fn bottom() -> usize {
    addr_of!(_stack_end) as usize
}

fn top() -> usize {
    addr_of!(_stack_start) as usize
}

/// The RAM between the statics and the top of the stack.
pub fn room() -> usize {
    top() - bottom()
}

/// Ends the program (QEMU exits with a failure) when the statics leave the
/// stack less than [`NEEDED`]. Call first in `main`, before any deep call.
pub fn check_room() {
    if room() < NEEDED {
        hprintln!(
            "firmware: {} B of RAM left for the stack, {} B needed: shrink the buffers",
            room(),
            NEEDED
        );
        debug::exit(EXIT_FAILURE);
    }
}

/// Paints the unused stack. Call once, early in `main`.
pub fn paint() {
    let sp = cortex_m::register::msp::read() as usize;
    let end = sp.saturating_sub(MARGIN) & !3;
    let mut at = bottom();
    while at < end {
        // SAFETY: [_stack_end, sp - MARGIN) is RAM (linker script) that no
        // static occupies and that lies below every live stack frame, so
        // nothing reads it before it is written again as stack.
        unsafe { write_volatile(at as *mut u32, PAINT) };
        at += 4;
    }
}

/// Bytes of stack used at the deepest point so far.
pub fn peak() -> usize {
    let mut at = bottom();
    // SAFETY: reads words of RAM between the statics and the stack top,
    // all valid and aligned; a word the stack is using may change under the
    // read, which only makes the estimate conservative.
    while at < top() && unsafe { read_volatile(at as *const u32) } == PAINT {
        at += 4;
    }
    top() - at
}
