//! The seed's logging echo (PyMOTW `socketserver_echo.py`): a server in a
//! thread, a client that sends `Hello, world`, and the trace of every
//! lifecycle call in the seed's order. Core logs the lifecycle itself (the
//! `log` feature); this program only adds what the seed's subclasses add.
//!
//! Run: `cargo run --example echo` (`RUST_LOG=info` hides the trace).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use log::{debug, info};
use socketserver::{Connection, Error, StreamRequest, StreamRequestHandler};
use socketserver_std::TCPServer;

/// The seed's `EchoRequestHandler`: one `recv(1024)`, logged, sent back.
#[derive(Clone, Default)]
struct EchoRequestHandler;

impl<C: Connection> StreamRequestHandler<C> for EchoRequestHandler {
    fn handle(&mut self, req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        let mut data = [0u8; 1024];
        let n = req.read(&mut data)?;
        debug!(target: "EchoRequestHandler", "recv()->\"{}\"", String::from_utf8_lossy(&data[..n]));
        req.write_all(&data[..n])
    }
}

/// Prints `Logger: message`, Python's `%(name)s: %(message)s`, naming
/// core's trace targets after the seed's classes.
fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("debug"))
        .format(|buf, record| {
            let name = match record.target() {
                "socketserver::server" => "EchoServer",
                "socketserver::handler" => "EchoRequestHandler",
                other => other,
            };
            writeln!(buf, "{name}: {}", record.args())
        })
        .init();
}

fn main() -> std::io::Result<()> {
    init_logging();
    let mut server = TCPServer::bind("127.0.0.1:0", EchoRequestHandler)?;
    let address = *server.server_address();
    let stop = server.shutdown_handle();
    // The client starts once the server has logged its start, as in the seed's output.
    let (started, wait_started) = std::sync::mpsc::channel();
    let serving = thread::spawn(move || {
        debug!(target: "EchoServer", "waiting for request");
        info!(target: "EchoServer", "Handling requests, press <Ctrl-C> to quit");
        let _ = started.send(());
        server.serve_forever(Duration::from_millis(500))
    });
    let _ = wait_started.recv();

    info!(target: "client", "Server on {address}");
    debug!(target: "client", "creating socket");
    debug!(target: "client", "connecting to server");
    let mut s = TcpStream::connect(address)?;
    let message = b"Hello, world";
    debug!(target: "client", "sending data: \"{}\"", String::from_utf8_lossy(message));
    let len_sent = s.write(message)?;
    debug!(target: "client", "waiting for response");
    let mut response = vec![0u8; len_sent];
    s.read_exact(&mut response)?;
    debug!(target: "client", "response from server: \"{}\"", String::from_utf8_lossy(&response));

    debug!(target: "EchoServer", "shutdown()");
    stop.shutdown();
    debug!(target: "client", "closing socket");
    drop(s);
    debug!(target: "client", "done");
    serving
        .join()
        .map_err(|_| std::io::Error::other("server thread panicked"))?
}
