//! The seed's threaded echo (PyMOTW `socketserver_threaded.py`): each
//! request runs in a new thread, and the reply names it (`Thread-2: …`).
//!
//! Run: `cargo run --example threaded`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use socketserver::{Connection, Error, StreamRequest, StreamRequestHandler};
use socketserver_std::{ThreadingTCPServer, next_thread_name};

#[derive(Clone, Default)]
struct ThreadedEchoRequestHandler;

impl<C: Connection> StreamRequestHandler<C> for ThreadedEchoRequestHandler {
    fn handle(&mut self, req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        let mut data = [0u8; 1024];
        let n = req.read(&mut data)?;
        let current = thread::current();
        let name = current.name().unwrap_or("unnamed");
        req.write_all(name.as_bytes())?;
        req.write_all(b": ")?;
        req.write_all(&data[..n])
    }
}

fn main() -> std::io::Result<()> {
    let mut server = ThreadingTCPServer::bind("localhost:0", ThreadedEchoRequestHandler)?;
    let address = *server.server_address();
    let stop = server.shutdown_handle();
    // Named from the same counter as the workers, as Python numbers threads.
    let name = next_thread_name();
    println!("Server loop running in thread: {name}");
    let serving = thread::Builder::new()
        .name(name)
        .spawn(move || server.serve_forever(Duration::from_millis(500)))?;

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
