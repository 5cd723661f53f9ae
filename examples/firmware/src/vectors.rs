//! The device part of the vector table: one entry per interrupt line of the
//! LM3S6965 up to the Ethernet controller's (IRQ 42), each bound to
//! `DefaultHandler`. Without its `device` feature cortex-m-rt fills in 240
//! entries, 788 bytes of flash for lines this firmware never enables: only
//! the Ethernet line is ever unmasked (main.rs), so no other can be taken.

use crate::stellaris_enet::IRQ_NUMBER;

/// Entries: lines 0 to the Ethernet controller's.
const LINES: usize = IRQ_NUMBER as usize + 1;

unsafe extern "C" {
    /// The `#[exception] DefaultHandler` of main.rs, under cortex-m-rt's name.
    fn DefaultHandler();
}

/// Read only by the hardware: cortex-m-rt's `link.x` puts this section
/// right after the exception vectors.
#[unsafe(link_section = ".vector_table.interrupts")]
#[unsafe(no_mangle)]
static __INTERRUPTS: [unsafe extern "C" fn(); LINES] = [DefaultHandler; LINES];
