//! Throughput of a TCP echo through the smoltcp backend over TAP.
//!
//! Creates a private network namespace with a TAP device, serves core's
//! `Echo` (under `Sync`) or `NonBlockingEcho` (under `Multiplexed`) on the
//! smoltcp stack there, sends 64 MiB through it from a kernel socket while
//! reading the echo back, checks every byte, and prints MiB/s. Needs root.
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
    let result = with_server("smoltcp_tap_bench", Spec::new(strategy, 4), move |addr| {
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
    });
    match result {
        Some((Ok(elapsed), _)) => {
            let rate = mib as f64 / elapsed.as_secs_f64();
            println!(
                "{mib} MiB echoed through smoltcp over TAP ({strategy:?}) in {:.2} s: {rate:.1} MiB/s each way",
                elapsed.as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Some((Err(e), _)) => {
            eprintln!("smoltcp_tap_bench: {e}");
            ExitCode::FAILURE
        }
        None => ExitCode::FAILURE,
    }
}
