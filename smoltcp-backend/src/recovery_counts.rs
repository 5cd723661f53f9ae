//! What loss recovery did, in one shape whether it is compiled in
//! (`recovery.rs`) or out (`recovery_off.rs`, where it stays zero).

/// Counters of what recovery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Fast retransmits triggered by the peer's SACK blocks.
    pub(crate) fast_retransmits: u32,
    /// Fast retransmits triggered by the timer.
    pub(crate) probes: u32,
}
