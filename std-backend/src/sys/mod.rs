//! The OS calls that socket2 does not wrap (or not safely): epoll, poll(2),
//! fork (with the signal state a child starts with) and `_exit`, the reset
//! of a connection another thread or process holds,
//! `SIOCOUTQ`, a datagram received into an initialised buffer, and the
//! process id cached until a fork.

pub(crate) mod fork;
pub(crate) mod outq;
pub(crate) mod pid;
pub(crate) mod poll;
pub(crate) mod readiness;
pub(crate) mod recv;
pub(crate) mod reset;
