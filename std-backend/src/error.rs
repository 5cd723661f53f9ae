//! Errors the std strategies report to `handle_error`.

use std::any::Any;
use std::fmt;
use std::io;

/// Why a request failed outside the handler's own `Result`.
#[derive(Debug)]
#[non_exhaustive]
pub enum WorkerError {
    /// The handler panicked; the message is the panic's payload when it was a string.
    Panicked(String),
    /// No thread or child could be started for the request.
    Spawn(io::Error),
}

impl WorkerError {
    /// The error for a caught panic payload.
    pub fn from_panic(payload: &(dyn Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string panic payload".to_owned());
        WorkerError::Panicked(message)
    }
}

impl fmt::Display for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerError::Panicked(msg) => write!(f, "request handler panicked: {msg}"),
            WorkerError::Spawn(e) => write!(f, "cannot start a worker for the request: {e}"),
        }
    }
}

impl std::error::Error for WorkerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WorkerError::Spawn(e) => Some(e),
            WorkerError::Panicked(_) => None,
        }
    }
}
