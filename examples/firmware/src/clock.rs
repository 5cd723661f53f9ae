//! Millisecond clock from SysTick, as core's `Clock` (which smoltcp's stack
//! and the servers read).
//!
//! Assumption: the core runs at 12.5 MHz. QEMU's lm3s6965evb derives the CPU
//! clock from SYSCTL's RCC register (200 MHz / (SYSDIV + 1)); its reset value
//! 0x078E_3AC0 has SYSDIV = 15, so 12.5 MHz, and the firmware never touches
//! RCC. QEMU does not wire SysTick's external reference clock on this board,
//! so SysTick counts core cycles. (Silicon at reset runs from the ~12 MHz
//! internal oscillator, +/-30%: a board port should set up the PLL and change
//! `CORE_HZ`.)
//!
//! SysTick interrupts once per millisecond and the handler bumps a counter.
//! `Clock::now` widens that 32-bit counter to 64 bits, so time does not wrap
//! after 49 days as long as `now` is called at least once per wrap (the main
//! loop wakes at least every `MAX_SLEEP`).

use core::cell::Cell;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use socketserver_core::time::Instant;

pub const CORE_HZ: u32 = 12_500_000;
const TICK_HZ: u32 = 1_000;

static TICKS_MS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    TICKS_MS.fetch_add(1, Ordering::Relaxed);
}

/// Owned by the network stack; `now` takes `&self` (core's `Clock`), so the
/// widening state sits in `Cell`s: the clock is used from the main loop only.
pub struct Clock {
    last: Cell<u32>,
    total_ms: Cell<u64>,
}

impl Clock {
    /// Starts SysTick at 1 kHz from the core clock and its interrupt.
    pub fn start(mut syst: SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(CORE_HZ / TICK_HZ - 1);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        Clock {
            last: Cell::new(0),
            total_ms: Cell::new(0),
        }
    }
}

impl socketserver_core::time::Clock for Clock {
    fn now(&self) -> Instant {
        let ticks = TICKS_MS.load(Ordering::Relaxed);
        let total = self.total_ms.get() + u64::from(ticks.wrapping_sub(self.last.get()));
        self.total_ms.set(total);
        self.last.set(ticks);
        Instant::from_millis(total)
    }
}
