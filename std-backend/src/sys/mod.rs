//! The OS calls that socket2 does not wrap: poll(2), fork and `_exit`.

pub(crate) mod fork;
pub(crate) mod poll;
