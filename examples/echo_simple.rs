//! The seed's simple echo (PyMOTW `socketserver_echo_simple.py`): a plain
//! `TCPServer` on `localhost:0`, one client, one message.
//!
//! Run: `cargo run --example echo_simple`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use socketserver::{Connection, Error, StreamRequest, StreamRequestHandler};
use socketserver_std::TCPServer;

#[derive(Clone, Default)]
struct EchoRequestHandler;

impl<C: Connection> StreamRequestHandler<C> for EchoRequestHandler {
    fn handle(&mut self, req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        let mut data = [0u8; 1024];
        let n = req.read(&mut data)?;
        req.write_all(&data[..n])
    }
}

fn main() -> std::io::Result<()> {
    let mut server = TCPServer::bind("localhost:0", EchoRequestHandler)?;
    let address = *server.server_address();
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever(Duration::from_millis(500)));

    let mut s = TcpStream::connect(address)?;
    let message = b"Hello, world";
    println!("Sending : \"{}\"", String::from_utf8_lossy(message));
    let len_sent = s.write(message)?;
    let mut response = vec![0u8; len_sent];
    s.read_exact(&mut response)?;
    println!("Received: \"{}\"", String::from_utf8_lossy(&response));

    stop.shutdown();
    drop(s);
    serving
        .join()
        .map_err(|_| std::io::Error::other("server thread panicked"))?
}
