//! The user's hooks plus the options core reads through hooks.

use core::error::Error;
use core::fmt::Debug;
use std::time::Duration;

use socketserver_core::ServerHooks;

/// The user's hooks `K` with the server's `timeout` option: core asks the
/// hooks for the `handle_request` timeout, and the option answers when the
/// user's hooks do not. Every other hook is forwarded unchanged.
#[derive(Debug, Clone)]
pub struct Hooks<K> {
    inner: K,
    timeout: Option<Duration>,
}

impl<K> Hooks<K> {
    pub(crate) fn new(inner: K, timeout: Option<Duration>) -> Self {
        Self { inner, timeout }
    }

    /// The user's hooks.
    pub fn inner(&self) -> &K {
        &self.inner
    }
}

impl<A: Debug + ?Sized, K: ServerHooks<A>> ServerHooks<A> for Hooks<K> {
    fn server_activate(&self) {
        self.inner.server_activate();
    }
    fn verify_request(&self, client: &A) -> bool {
        self.inner.verify_request(client)
    }
    fn process_request(&self, client: &A) {
        self.inner.process_request(client);
    }
    fn finish_request(&self, client: &A) {
        self.inner.finish_request(client);
    }
    fn handle_error(&self, client: &A, error: &dyn Error) {
        self.inner.handle_error(client, error);
    }
    fn shutdown_request(&self, client: &A) {
        self.inner.shutdown_request(client);
    }
    fn close_request(&self, client: &A) {
        self.inner.close_request(client);
    }
    fn handle_timeout(&self) {
        self.inner.handle_timeout();
    }
    fn service_actions(&self) {
        self.inner.service_actions();
    }
    fn server_close(&self) {
        self.inner.server_close();
    }
    fn timeout(&self) -> Option<Duration> {
        self.inner.timeout().or(self.timeout)
    }
}
