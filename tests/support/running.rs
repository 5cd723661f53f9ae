//! A server serving in its own thread for a test, stopped and closed when
//! dropped: [`Running`], built by [`run_server!`](crate::run_server).

use std::thread::JoinHandle;

use socketserver_std::ShutdownHandle;

/// A server running in a thread; stops it (and so closes it) when dropped.
pub struct Running {
    /// Stops the server's loop.
    pub stop: ShutdownHandle,
    /// The serving thread.
    pub thread: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.shutdown();
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread");
        }
    }
}

/// Binds with the given constructor's result, serves it in a thread with a
/// `serve_forever` poll interval of 100 ms, and returns the [`Running`]
/// guard and the server's address.
#[macro_export]
macro_rules! run_server {
    ($server:expr) => {{
        let mut server = $server.expect("bind");
        let stop = server.shutdown_handle();
        let address = server.server_address().clone();
        let thread = std::thread::spawn(move || {
            server
                .serve_forever(std::time::Duration::from_millis(100))
                .expect("serve_forever");
            server.server_close();
        });
        (
            $crate::support::running::Running {
                stop,
                thread: Some(thread),
            },
            address,
        )
    }};
}

/// Where a server's thread reports that it listens.
pub type Ready = std::sync::mpsc::Sender<(ShutdownHandle, std::net::SocketAddr)>;

/// Runs `body` on a new thread with a `stack`-byte stack (a multiplexed
/// server's pinned slots live on it) and waits until it hands a built TCP
/// server to [`serve_tcp`]; returns the guard and the server's address.
/// The server is built inside the thread because a pinned strategy cannot
/// move to it.
pub fn spawn_tcp_server(
    stack: usize,
    body: impl FnOnce(Ready) + Send + 'static,
) -> (Running, std::net::SocketAddr) {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .stack_size(stack)
        .spawn(move || body(tx))
        .expect("server thread");
    let (stop, addr) = rx.recv().expect("the server thread reports its address");
    (
        Running {
            stop,
            thread: Some(thread),
        },
        addr,
    )
}

/// Reports `server` as listening, serves it until stopped, closes it.
pub fn serve_tcp<P, K>(
    mut server: socketserver_std::SocketStreamServer<std::net::SocketAddr, P, K>,
    ready: &Ready,
) where
    K: socketserver::ServerHooks<std::net::SocketAddr>,
    P: socketserver::StrategyFor<socketserver_std::TcpSocketListener, K> + socketserver_std::Attach,
{
    ready
        .send((server.shutdown_handle(), *server.server_address()))
        .expect("the test waits for the address");
    server
        .serve_forever(std::time::Duration::from_millis(100))
        .expect("serve_forever");
    server.server_close();
}
