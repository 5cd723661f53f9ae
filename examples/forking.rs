//! The seed's forking echo (PyMOTW `socketserver_forking.py`): each request
//! runs in a forked child, and the reply carries the child's pid.
//!
//! Run: `cargo run --example forking`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use socketserver::{Connection, Error, StreamRequest, StreamRequestHandler};
use socketserver_std::ForkingTCPServer;

#[derive(Clone, Default)]
struct ForkingEchoRequestHandler;

impl<C: Connection> StreamRequestHandler<C> for ForkingEchoRequestHandler {
    fn handle(&mut self, req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        let mut data = [0u8; 1024];
        let n = req.read(&mut data)?;
        let pid = std::process::id().to_string();
        req.write_all(pid.as_bytes())?;
        req.write_all(b": ")?;
        req.write_all(&data[..n])
    }
}

fn main() -> std::io::Result<()> {
    let mut server = ForkingTCPServer::bind("localhost:0", ForkingEchoRequestHandler)?;
    let address = *server.server_address();
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || {
        let served = server.serve_forever(Duration::from_millis(500));
        server.server_close(); // waits for the child (block_on_close)
        served
    });
    println!("Server loop running in process: {}", std::process::id());

    let mut s = TcpStream::connect(address)?;
    let message = b"Hello, world";
    println!("Sending : \"{}\"", String::from_utf8_lossy(message));
    s.write_all(message)?;
    s.shutdown(std::net::Shutdown::Write)?;
    let mut response = Vec::new();
    s.read_to_end(&mut response)?;
    println!("Received: \"{}\"", String::from_utf8_lossy(&response));

    stop.shutdown();
    serving
        .join()
        .map_err(|_| std::io::Error::other("server thread panicked"))?
}
