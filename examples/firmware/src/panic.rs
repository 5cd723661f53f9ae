//! The panic handler: says that the firmware panicked, over semihosting, and
//! ends QEMU with a failure status (a test sees it exit early).
//!
//! It prints no message and no location on purpose. Reading either (even
//! only the location) keeps every panic site's message, file path and
//! `core::fmt` argument code in the image: 13.3 KiB of flash here, measured
//! against `panic-semihosting`, which prints both. Unread, LLVM drops them.
//! To find where a panic comes from, boot QEMU with `-s -S` and break on
//! this handler in gdb: the backtrace names the panic site.

use core::panic::PanicInfo;

use cortex_m_semihosting::debug::{self, EXIT_FAILURE};
use cortex_m_semihosting::hprintln;

#[panic_handler]
fn panic(_info: &PanicInfo) -> ! {
    cortex_m::interrupt::disable();
    hprintln!("firmware: panic");
    debug::exit(EXIT_FAILURE);
    // Only reached on a board without a debugger attached.
    loop {
        cortex_m::asm::wfi();
    }
}
