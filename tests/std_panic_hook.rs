//! A handler panic under `Threading`: the crate catches it and reports it to
//! `handle_error`, and leaves the process's panic hook alone, so the hook an
//! application installs (the recipe in `Threading`'s docs) sees the panic
//! on the handler thread. Its own binary: the hook is process-wide.

use std::io::Read;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use socketserver::{Connection, Error, ServerHooks, StreamRequest, StreamRequestHandler};
use socketserver_std::{Threading, ThreadingTCPServer};

#[derive(Clone)]
struct Panics;

impl<C: Connection> StreamRequestHandler<C> for Panics {
    fn handle(&mut self, _req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        panic!("boom");
    }
}

#[derive(Clone, Default)]
struct Reports(Arc<Mutex<Vec<String>>>);

impl<A: std::fmt::Debug> ServerHooks<A> for Reports {
    fn handle_error(&self, _client: &A, error: &dyn std::error::Error) {
        self.0.lock().unwrap().push(error.to_string());
    }
}

#[test]
fn a_handler_panic_reaches_the_applications_hook_and_handle_error() {
    static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let name = std::thread::current().name().unwrap_or("").to_owned();
        if name.starts_with("Thread-") {
            SEEN.lock().unwrap().push(name); // silenced, as the docs show
        } else {
            default_hook(info);
        }
    }));

    let reports = Reports::default();
    let mut server =
        ThreadingTCPServer::with_hooks("127.0.0.1:0", Threading::new(Panics), reports.clone())
            .unwrap();
    let mut client = TcpStream::connect(server.server_address()).unwrap();
    server.handle_request().unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).expect("EOF after the panic");
    server.server_close();

    let seen = SEEN.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "the application's hook ran once: {seen:?}");
    let reports = reports.0.lock().unwrap().clone();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].contains("panicked: boom"), "{reports:?}");
}
