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
