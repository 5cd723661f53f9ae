//! With the `log` feature, core logs the seed's call trace by itself.
//! Run with `cargo test -p socketserver-core --features log` (the README's
//! test command does); without the feature there is no trace to check.
#![cfg(feature = "log")]

mod support;

use std::sync::Mutex;

use socketserver_core::{DefaultHooks, Echo, Sequential, Server};
use support::{MockListener, MockWaiter};

static RECORDS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Recorder;

impl log::Log for Recorder {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        if record.target().starts_with("socketserver") {
            RECORDS.lock().unwrap().push(format!("{}", record.args()));
        }
    }
    fn flush(&self) {}
}

#[test]
fn the_seed_trace_appears_with_no_user_code() {
    log::set_logger(&Recorder).unwrap();
    log::set_max_level(log::LevelFilter::Debug);
    let listener = MockListener::default();
    let mut server = Server::new(
        listener.clone(),
        MockWaiter::default(),
        Sequential::new(Echo::<64>),
        DefaultHooks,
    );
    listener.connect(b"Hello, world", true);
    server.handle_request().unwrap();
    let steps: Vec<String> = RECORDS
        .lock()
        .unwrap()
        .iter()
        .map(|line| line.split('(').next().unwrap().to_string())
        .collect();
    assert_eq!(
        steps,
        [
            "__init__",
            "server_activate",
            "handle_request",
            "verify_request",
            "process_request",
            "finish_request",
            "__init__",
            "setup",
            "handle",
            "finish",
            "close_request"
        ]
    );
    let records = RECORDS.lock().unwrap();
    assert!(
        records[3].contains("(\"127.0.0.1\", 40001)"),
        "verify_request shows the request and the client address: {}",
        records[3]
    );
}
