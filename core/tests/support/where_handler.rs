//! Test handlers that answer with what `req.server()` gives: shared by the
//! server-context tests of core (`core/tests/server_context.rs`), std
//! (`tests/std_server_context.rs`) and smoltcp
//! (`smoltcp-backend/tests/loopback.rs`), which include this file by path.

use socketserver_core::{
    AsyncStreamRequest, AsyncStreamRequestHandler, Connection, DatagramRequest,
    DatagramRequestHandler, Error, HandlerError,
};

/// Answers each line with the server's address as `{:?}`; `STOP` stops
/// the server and answers `BYE` (so the call returned: it did not wait
/// for the loop this request may be running on).
#[derive(Clone)]
pub struct Where;

impl<C: Connection> AsyncStreamRequestHandler<C> for Where {
    async fn handle(&mut self, req: &mut AsyncStreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        let mut line = [0u8; 64];
        loop {
            let n = req.read_line(&mut line).await?;
            match &line[..n] {
                b"" => return Ok(()),
                b"STOP\n" => {
                    req.server().shutdown();
                    return req.write_all(b"BYE\n").await;
                }
                _ => {
                    let address = format!("{:?}\n", req.server().server_address());
                    req.write_all(address.as_bytes()).await?;
                }
            }
        }
    }
}

/// The datagram face of [`Where`]: `STOP` stops the server and answers
/// `BYE`; any other datagram is answered with the server's address.
#[derive(Clone)]
#[allow(dead_code)] // the smoltcp tests use only `Where`
pub struct WhereDatagram;

impl<A: core::fmt::Debug> DatagramRequestHandler<A> for WhereDatagram {
    fn handle(&mut self, req: &mut DatagramRequest<'_, A>) -> Result<(), HandlerError> {
        if req.packet() == b"STOP" {
            req.server().shutdown();
            return req.write_all(b"BYE");
        }
        let address = format!("{:?}", req.server().server_address());
        req.write_all(address.as_bytes())
    }
}
