//! Baseline: an echo on tokio, as its tutorial writes it: `#[tokio::main]`
//! (the multi-thread runtime, one worker per CPU this process may use, so
//! one worker when the driver pins it to a CPU) and a task per connection.

use clap::Parser;
use socketserver_bench::listen::{ECHO_BUF, ListenArgs};
use socketserver_bench::{announce, die};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};

#[derive(Debug, Parser)]
#[command(about = "Baseline: tokio echo")]
struct Cli {
    #[command(flatten)]
    listen: ListenArgs,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    match (&cli.listen.tcp, &cli.listen.unix) {
        (Some(addr), _) => {
            let listener = TcpListener::bind(addr)
                .await
                .unwrap_or_else(|e| die("baseline-tokio: bind", e));
            let name = listener
                .local_addr()
                .unwrap_or_else(|e| die("baseline-tokio", e));
            announce(&name).unwrap_or_else(|e| die("baseline-tokio: stdout", e));
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => drop(tokio::spawn(echo(stream))),
                    Err(e) => eprintln!("baseline-tokio: accept: {e}"),
                }
            }
        }
        (None, Some(path)) => {
            let _ = std::fs::remove_file(path);
            let listener =
                UnixListener::bind(path).unwrap_or_else(|e| die("baseline-tokio: bind", e));
            announce(&path.display()).unwrap_or_else(|e| die("baseline-tokio: stdout", e));
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => drop(tokio::spawn(echo(stream))),
                    Err(e) => eprintln!("baseline-tokio: accept: {e}"),
                }
            }
        }
        (None, None) => die("baseline-tokio", "--tcp ADDR or --unix PATH is required"),
    }
}

async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let mut buf = vec![0u8; ECHO_BUF];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
