//! The listening side of the hand-written std baselines: `--tcp ADDR` or
//! `--unix PATH`, accepting [`Stream`]s, and the echo loop they all run.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use crate::endpoint::Stream;

/// Buffer of the hand-written echo loops: the size `echo_server`'s
/// threading handler uses, so the comparison measures the library, not a
/// buffer size.
pub const ECHO_BUF: usize = 16 * 1024;

/// Where a baseline listens.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub struct ListenArgs {
    /// Listen on TCP at ADDR (port 0: the kernel chooses).
    #[arg(long, value_name = "ADDR")]
    pub tcp: Option<SocketAddr>,
    /// Listen on a Unix stream socket at PATH (a stale file is replaced).
    #[arg(long, value_name = "PATH")]
    pub unix: Option<PathBuf>,
}

/// A bound stream listener of either kind.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// Unix stream.
    Unix(UnixListener, PathBuf),
}

impl ListenArgs {
    /// Binds and listens.
    pub fn bind(&self) -> io::Result<Listener> {
        match (&self.tcp, &self.unix) {
            (Some(addr), _) => Ok(Listener::Tcp(TcpListener::bind(addr)?)),
            (None, Some(path)) => {
                // The benchmark owns its socket paths: a leftover is stale.
                let _ = std::fs::remove_file(path);
                Ok(Listener::Unix(UnixListener::bind(path)?, path.clone()))
            }
            (None, None) => Err(io::Error::other("--tcp ADDR or --unix PATH is required")),
        }
    }
}

impl Listener {
    /// Waits for the next connection.
    pub fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(s, _)| Stream::Tcp(s)),
            Listener::Unix(l, _) => l.accept().map(|(s, _)| Stream::Unix(s)),
        }
    }

    /// The address to announce: `IP:PORT` with the real port, or the path.
    pub fn name(&self) -> io::Result<String> {
        match self {
            Listener::Tcp(l) => Ok(l.local_addr()?.to_string()),
            Listener::Unix(_, path) => Ok(path.display().to_string()),
        }
    }
}

/// Echoes what arrives until the peer's EOF (or an error, which ends the
/// connection quietly: a benchmark client may reset).
pub fn echo_until_eof(stream: &mut Stream) {
    let mut buf = vec![0u8; ECHO_BUF];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}
