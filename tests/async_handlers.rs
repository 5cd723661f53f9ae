//! One async handler value, served on real sockets by every blocking
//! strategy: `Sequential`, `Threading` and `Forking`, over TCP and Unix streams.
//! Core's `Upper` (lines in upper case, an overlong line answered with an
//! error line and skipped) and a user's handler wrapped in `Async`.

mod support;

use std::io::{BufRead, BufReader, Write};

use socketserver::{
    Async, AsyncStreamRequest, AsyncStreamRequestHandler, Connection, Error, Sequential, Upper,
};
use socketserver_std::{
    ForkingTCPServer, ForkingUnixStreamServer, TCPServer, Threading, ThreadingTCPServer,
    ThreadingUnixStreamServer, UnixStreamServer,
};
use support::behaviour::{self, StreamTarget};

/// Numbers each line it answers: `1: first`, `2: second`, ...
#[derive(Clone, Default)]
struct Numbered;

impl<C: Connection> AsyncStreamRequestHandler<C> for Numbered {
    async fn handle(&mut self, req: &mut AsyncStreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        let mut line = [0u8; 128];
        let mut count = 0u32;
        loop {
            let n = req.read_line(&mut line).await?;
            if n == 0 {
                return Ok(());
            }
            count += 1;
            let prefix = format!("{count}: ");
            req.write_all(prefix.as_bytes()).await?;
            req.write_all(&line[..n]).await?;
        }
    }
}

/// Sends `lines`, half-closes, reads every answer line until EOF.
fn converse(target: &dyn StreamTarget, input: &[u8]) -> Vec<String> {
    let mut s = target.connect().expect("connect");
    s.write_all(input).expect("send");
    s.shutdown_write().expect("half-close");
    let mut answers = Vec::new();
    let mut reader = BufReader::new(&mut *s);
    let mut line = String::new();
    while reader.read_line(&mut line).expect("answer") > 0 {
        answers.push(std::mem::take(&mut line));
    }
    answers
}

fn upper_checks(name: &str, target: &dyn StreamTarget) {
    let mut input = b"hello\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 10_000));
    input.extend(b"\nstill here\n");
    let answers = converse(target, &input);
    assert_eq!(
        answers,
        ["HELLO\n", "ERROR line too long\n", "STILL HERE\n"],
        "{name}"
    );
}

fn numbered_checks(name: &str, target: &dyn StreamTarget) {
    let answers = converse(target, b"first\nsecond\n");
    assert_eq!(answers, ["1: first\n", "2: second\n"], "{name}");
}

#[test]
fn upper_and_a_users_async_handler_on_every_blocking_strategy_over_tcp() {
    let _fork = support::fork_lock();
    {
        let (_s, addr) = run_server!(TCPServer::new("127.0.0.1:0", Sequential::new(Upper::<256>)));
        upper_checks("sync", &behaviour::tcp(addr));
        let (_s, addr) = run_server!(TCPServer::new(
            "127.0.0.1:0",
            Sequential::new(Async(Numbered))
        ));
        numbered_checks("sync", &behaviour::tcp(addr));
    }
    {
        let (_s, addr) = run_server!(ThreadingTCPServer::new(
            "127.0.0.1:0",
            Threading::new(Upper::<256>)
        ));
        upper_checks("threading", &behaviour::tcp(addr));
        let (_s, addr) = run_server!(ThreadingTCPServer::new(
            "127.0.0.1:0",
            Threading::new(Async(Numbered))
        ));
        numbered_checks("threading", &behaviour::tcp(addr));
    }
    {
        let (_s, addr) = run_server!(ForkingTCPServer::new(
            "127.0.0.1:0",
            socketserver_std::Forking::new(Upper::<256>)
        ));
        upper_checks("forking", &behaviour::tcp(addr));
        let (_s, addr) = run_server!(ForkingTCPServer::new(
            "127.0.0.1:0",
            socketserver_std::Forking::new(Async(Numbered))
        ));
        numbered_checks("forking", &behaviour::tcp(addr));
    }
}

#[test]
fn upper_on_every_blocking_strategy_over_unix_streams() {
    let _fork = support::fork_lock();
    let path = support::temp_socket("async-sync");
    let (_s, _) = run_server!(UnixStreamServer::new(&path, Sequential::new(Upper::<256>)));
    upper_checks("sync unix", &behaviour::unix(&path));
    let path = support::temp_socket("async-threading");
    let (_s, _) = run_server!(ThreadingUnixStreamServer::new(
        &path,
        Threading::new(Upper::<256>)
    ));
    upper_checks("threading unix", &behaviour::unix(&path));
    let path = support::temp_socket("async-forking");
    let (_s, _) = run_server!(ForkingUnixStreamServer::new(
        &path,
        socketserver_std::Forking::new(Upper::<256>)
    ));
    upper_checks("forking unix", &behaviour::unix(&path));
}
