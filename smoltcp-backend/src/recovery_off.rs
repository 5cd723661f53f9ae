//! Loss recovery compiled out (the `loss-recovery` feature is off, as in
//! firmware built without `std`): the gate passes every frame unchanged and
//! smoltcp recovers on its own. Same interface as `recovery.rs`, doing
//! nothing, so the gate and the pool need no `cfg` of their own.

use core::convert::Infallible;

use smoltcp::phy::Medium;
use smoltcp::time::Instant;
use smoltcp::wire::IpEndpoint;

/// No frame is ever written: no buffer.
pub(crate) const FRAME_BYTES: usize = 0;

/// Never made: nothing is rewritten.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stale(Infallible);

impl Stale {
    pub(crate) fn rewrite(&self, _: Medium, _: &[u8], _: &mut [u8]) -> Option<usize> {
        match self.0 {}
    }
}

pub(crate) use crate::recovery_counts::Counts;

#[derive(Debug)]
pub(crate) struct Recovery {
    pub(crate) enabled: bool,
    pub(crate) counts: Counts,
}

impl Recovery {
    pub(crate) fn new(_: Medium, _: bool) -> Self {
        Self {
            enabled: false,
            counts: Counts::default(),
        }
    }

    /// `P` is the pool-port predicate, which nothing here asks.
    pub(crate) fn on_incoming<P>(&mut self, _: &[u8], _: Instant, _: P) -> Option<Stale> {
        None
    }

    pub(crate) fn on_outgoing(&mut self, _: &[u8], _: Instant) {}

    pub(crate) fn has_recovered(&self, _: u16, _: IpEndpoint) -> bool {
        false
    }

    pub(crate) fn poll(&mut self, _: Instant) {}

    pub(crate) fn next_due(&self) -> Option<Instant> {
        None
    }

    pub(crate) fn has_frame(&self) -> bool {
        false
    }

    pub(crate) fn next_frame(&mut self, _: &mut [u8]) -> Option<usize> {
        None
    }
}
