//! Baseline: a hand-written thread-per-connection echo over std (TCP or
//! Unix), what a Rust programmer writes without a server library.

use std::thread;

use clap::Parser;
use socketserver_bench::listen::{ListenArgs, echo_until_eof};
use socketserver_bench::{announce, die};

#[derive(Debug, Parser)]
#[command(about = "Baseline: thread-per-connection std echo")]
struct Cli {
    #[command(flatten)]
    listen: ListenArgs,
}

fn main() {
    let cli = Cli::parse();
    let listener = cli
        .listen
        .bind()
        .unwrap_or_else(|e| die("baseline-threads: bind", e));
    let name = listener
        .name()
        .unwrap_or_else(|e| die("baseline-threads", e));
    announce(&name).unwrap_or_else(|e| die("baseline-threads: stdout", e));
    loop {
        match listener.accept() {
            Ok(mut stream) => {
                // Detached: the process ends with SIGTERM from the driver.
                if let Err(e) = thread::Builder::new().spawn(move || echo_until_eof(&mut stream)) {
                    eprintln!("baseline-threads: spawn: {e}");
                }
            }
            Err(e) => eprintln!("baseline-threads: accept: {e}"),
        }
    }
}
