//! socketserver: Python's `socketserver` for Rust, one request handler from a
//! desktop service down to bare-metal firmware.
//!
//! This is the facade crate: it re-exports the `no_std` core
//! ([`socketserver_core`]) at the top level, the std backend as [`std`] (feature
//! `std`, on by default) and the smoltcp backend as `smoltcp` (feature
//! `smoltcp`). See the README for the tour.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use socketserver_core::*;

/// The std backend: TCP, UDP and Unix servers with sync, threading and forking strategies.
#[cfg(feature = "std")]
pub use socketserver_std as std;

/// The smoltcp backend: the same handlers on a userspace TCP/IP stack.
#[cfg(feature = "smoltcp")]
pub use socketserver_smoltcp as smoltcp;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
