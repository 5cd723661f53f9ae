//! Throughput of a TCP echo through the smoltcp backend over TAP.
//!
//! Creates a private network namespace with a TAP device, serves core's
//! `Echo` (under `Sequential` or `Multiplexed`) on the
//! smoltcp stack there, sends 64 MiB through it from a kernel socket while
//! reading the echo back, checks every byte, and prints MiB/s. Needs root.
//!
//! The baseline, in the same run: the same client and the same `Echo`
//! handler on the std backend's `TCPServer` over the kernel's loopback, so
//! the printed ratio says what the userspace stack and the TAP hop cost.
//!
//! ```text
//! cargo run --release --example smoltcp_tap_bench [-- MIB [sync|multiplexed]]
//! ```

#[path = "../tests/support/netns.rs"]
mod netns;
#[path = "../tests/support/smoltcp_server.rs"]
mod smoltcp_server;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use smoltcp_server::{Spec, Strategy, with_server};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mib: usize = match args.next().map(|a| a.parse()) {
        None => 64,
        Some(Ok(n)) if n > 0 && n <= 4096 => n,
        Some(_) => {
            eprintln!("usage: smoltcp_tap_bench [MIB (1-4096)] [sync|multiplexed]");
            return ExitCode::from(2);
        }
    };
    let strategy = match args.next().as_deref() {
        None | Some("sync") => Strategy::Sync,
        Some("multiplexed") => Strategy::Multiplexed,
        Some(other) => {
            eprintln!("unknown strategy {other}: sync or multiplexed");
            return ExitCode::from(2);
        }
    };
    if let Err(why) = netns::tap_privileges() {
        eprintln!("smoltcp_tap_bench: cannot run: {why}");
        return ExitCode::FAILURE;
    }
    let len = mib << 20;
    let baseline = match kernel_baseline(len) {
        Ok(elapsed) => elapsed,
        Err(e) => {
            eprintln!("smoltcp_tap_bench: baseline: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = with_server("smoltcp_tap_bench", Spec::new(strategy, 4), move |addr| {
        echo_through(addr, len)
    });
    match result {
        Some((Ok(elapsed), _)) => {
            let rate = mib as f64 / elapsed.as_secs_f64();
            let base_rate = mib as f64 / baseline.as_secs_f64();
            println!(
                "{mib} MiB echoed through smoltcp over TAP ({strategy:?}) in {:.2} s: {rate:.1} MiB/s each way",
                elapsed.as_secs_f64()
            );
            println!(
                "baseline, std TCPServer over kernel loopback, same handler: {:.2} s: {base_rate:.1} MiB/s each way",
                baseline.as_secs_f64()
            );
            println!("ratio smoltcp/baseline: {:.2}", rate / base_rate);
            ExitCode::SUCCESS
        }
        Some((Err(e), _)) => {
            eprintln!("smoltcp_tap_bench: {e}");
            ExitCode::FAILURE
        }
        None => ExitCode::FAILURE,
    }
}

/// The same echo through the std backend's `TCPServer` on 127.0.0.1.
fn kernel_baseline(len: usize) -> std::io::Result<Duration> {
    use socketserver::Echo;
    use socketserver::TCPServer;
    let mut server = TCPServer::bind("127.0.0.1:0", Echo::<65536>)?;
    let addr = *server.server_address();
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever(Duration::from_millis(500)));
    let measured = echo_through(addr, len);
    stop.shutdown();
    serving
        .join()
        .map_err(|_| std::io::Error::other("baseline server panicked"))??;
    measured
}

/// Sends `len` patterned bytes to the echo server at `addr` while reading the
/// echo back; checks every byte and returns the time from first write to EOF.
fn echo_through(addr: std::net::SocketAddr, len: usize) -> std::io::Result<Duration> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut writer = stream.try_clone()?;
    let start = Instant::now();
    let sender = thread::spawn(move || -> std::io::Result<()> {
        let chunk: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
        for _ in 0..len / chunk.len() {
            writer.write_all(&chunk)?;
        }
        writer.shutdown(std::net::Shutdown::Write)
    });
    let mut buf = vec![0u8; 65536];
    let mut got = 0usize;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        for (i, b) in buf[..n].iter().enumerate() {
            if *b != ((got + i) % 65536 % 251) as u8 {
                return Err(std::io::Error::other(format!(
                    "echo differs at {}",
                    got + i
                )));
            }
        }
        got += n;
    }
    let elapsed = start.elapsed();
    sender
        .join()
        .map_err(|_| std::io::Error::other("sender panicked"))??;
    if got != len {
        return Err(std::io::Error::other(format!(
            "echoed {got} of {len} bytes"
        )));
    }
    Ok(elapsed)
}
