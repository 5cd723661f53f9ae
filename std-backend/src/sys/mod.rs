//! The OS calls that socket2 does not wrap: poll(2), fork and `_exit`, and
//! the reset of a connection another thread or process holds.

pub(crate) mod fork;
pub(crate) mod outq;
pub(crate) mod poll;
pub(crate) mod reset;
