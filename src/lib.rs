//! socketserver: Python's `socketserver` for Rust, one request handler from a
//! desktop service down to bare-metal firmware.
//!
//! This is the facade crate: it re-exports the `no_std` core
//! ([`socketserver_core`]) and the std backend (`socketserver-std`: TCP, UDP
//! and Unix servers, Python's aliases such as [`TCPServer`], the `Threading`
//! and `Forking` mix-ins; feature `std`, on by default) at the top level, as
//! Python's `socketserver` module holds them, and the smoltcp backend as
//! `smoltcp` (feature `smoltcp`; with `std` as well, its TAP device, pcap
//! capture and std clock).
//! See the README for the tour.
#![cfg_attr(not(feature = "std"), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use socketserver_core::*;

// The std backend at the top level beside core (no name is in both): a
// module called `std` would shadow the standard library in every `use`.
#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
#[doc(inline)]
pub use socketserver_std::*;

/// The smoltcp backend: the same handlers on smoltcp's userspace TCP/IP
/// stack, no heap (the crate `socketserver-smoltcp`, shown here in full).
#[cfg(feature = "smoltcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "smoltcp")))]
pub mod smoltcp {
    #[doc(inline)]
    pub use socketserver_smoltcp::*;
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
