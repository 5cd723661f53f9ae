//! Baseline: a hand-written fork-per-connection echo (TCP or Unix), the
//! classic pre-fork-less Unix server.

use clap::Parser;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
use socketserver_bench::listen::{ListenArgs, echo_until_eof};
use socketserver_bench::{announce, die};

#[derive(Debug, Parser)]
#[command(about = "Baseline: fork-per-connection echo")]
struct Cli {
    #[command(flatten)]
    listen: ListenArgs,
}

fn main() {
    let cli = Cli::parse();
    let listener = cli
        .listen
        .bind()
        .unwrap_or_else(|e| die("baseline-fork: bind", e));
    let name = listener.name().unwrap_or_else(|e| die("baseline-fork", e));
    announce(&name).unwrap_or_else(|e| die("baseline-fork: stdout", e));
    loop {
        let mut stream = match listener.accept() {
            Ok(stream) => stream,
            Err(e) => {
                eprintln!("baseline-fork: accept: {e}");
                continue;
            }
        };
        // SAFETY: this process is single-threaded (no thread is ever
        // spawned), so the child may run ordinary code after fork.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                drop(listener);
                echo_until_eof(&mut stream);
                // Single-threaded, stdout already flushed: a plain exit is safe.
                std::process::exit(0);
            }
            Ok(ForkResult::Parent { .. }) => drop(stream),
            Err(e) => eprintln!("baseline-fork: fork: {e}"),
        }
        reap();
    }
}

/// Reaps every finished child without blocking, so their CPU time lands in
/// this process's `cutime`/`cstime` and no zombies pile up.
fn reap() {
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}
