//! Several servers from one thread with one shutdown: a threaded TCP echo,
//! a UDP echo and a multiplexed line server on a Unix socket, served by one
//! `ServerGroup`; the main thread talks to each once, then stops the group.
//!
//! ```sh
//! cargo run --example several_servers
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use socketserver::{Echo, EchoDatagram, Upper};
use socketserver::{
    HeapMultiplexed, ServerGroup, SocketStreamServer, ThreadingTCPServer, UDPServer, UnixConnection,
};

fn main() -> std::io::Result<()> {
    let mut tcp = ThreadingTCPServer::bind("127.0.0.1:0", Echo::<1024>)?;
    let mut udp = UDPServer::bind("127.0.0.1:0", EchoDatagram)?;
    let path = std::env::temp_dir().join(format!("several-servers-{}", std::process::id()));
    let lines = HeapMultiplexed::<UnixConnection, _, _>::new(Upper::<256>);
    let mut unix = SocketStreamServer::new(&path, lines)?;
    let (tcp_addr, udp_addr) = (*tcp.server_address(), *udp.server_address());
    println!(
        "tcp echo on {tcp_addr}, udp echo on {udp_addr}, upper on {}",
        path.display()
    );

    let mut group = ServerGroup::new()?;
    let stop = group.shutdown_handle();
    let serving = std::thread::spawn(move || -> std::io::Result<()> {
        group.serve_forever(
            &mut [&mut tcp, &mut udp, &mut unix],
            Duration::from_millis(500),
        )?;
        tcp.server_close();
        udp.server_close();
        unix.server_close();
        Ok(())
    });

    let mut stream = TcpStream::connect(tcp_addr)?;
    stream.write_all(b"hello over tcp")?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut echoed = String::new();
    stream.read_to_string(&mut echoed)?;
    println!("tcp:  {echoed}");

    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(Duration::from_secs(5)))?;
    socket.send_to(b"hello over udp", udp_addr)?;
    let mut buf = [0u8; 64];
    let n = socket.recv(&mut buf)?;
    println!("udp:  {}", String::from_utf8_lossy(&buf[..n]));

    let mut unix_client = UnixStream::connect(&path)?;
    unix_client.write_all(b"hello over unix\n")?;
    let mut line = String::new();
    BufReader::new(unix_client).read_line(&mut line)?;
    print!("unix: {line}");

    stop.shutdown(); // one call stops the group, whatever each server serves
    serving.join().expect("the group's thread")?;
    let _ = std::fs::remove_file(&path);
    Ok(())
}
