//! Async stream handlers under a blocking strategy, over the in-memory
//! transport: the same lifecycle and hook order as blocking handlers, the
//! async request's buffered reading (lines, overlong lines skipped, the
//! `embedded-io-async` traits), and the ready-made `Upper`.

mod support;

use socketserver_core::embedded_io_async::{BufRead, Write};
use socketserver_core::time::Duration;
use socketserver_core::{
    Async, AsyncStreamRequest, AsyncStreamRequestHandler, Connection, Error, Sequential, Server,
    Upper,
};
use support::{Journal, MockListener, MockWaiter, RecordingHooks};

fn hooks(journal: &Journal) -> RecordingHooks {
    RecordingHooks {
        journal: journal.clone(),
        refuse: false,
    }
}

/// Journals each step; `handle` echoes one line then fails if asked to.
#[derive(Debug, Clone)]
struct JournalingLine {
    journal: Journal,
    fail_handle: bool,
}

impl<C: Connection> AsyncStreamRequestHandler<C> for JournalingLine {
    async fn setup(&mut self, _req: &mut AsyncStreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        self.journal.push("setup");
        Ok(())
    }

    async fn handle(&mut self, req: &mut AsyncStreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        self.journal.push("handle");
        let mut line = [0u8; 64];
        let n = req.read_line(&mut line).await?;
        req.write_all(&line[..n]).await?;
        if self.fail_handle {
            return Err(Error::Handler("handle failed"));
        }
        Ok(())
    }

    async fn finish(
        &mut self,
        _req: &mut AsyncStreamRequest<'_, C>,
    ) -> Result<(), Error<C::Error>> {
        self.journal.push("finish");
        Ok(())
    }
}

#[test]
fn an_async_handler_keeps_pythons_call_order_and_finish_runs_after_a_failure() {
    for fail_handle in [false, true] {
        let journal = Journal::default();
        let listener = MockListener::default();
        let handler = JournalingLine {
            journal: journal.clone(),
            fail_handle,
        };
        let mut server = Server::new(
            listener.clone(),
            MockWaiter::default(),
            Sequential::new(Async(handler)),
            hooks(&journal),
        );
        server.set_timeout(Some(Duration::from_secs(5)));
        let pipe = listener.connect(b"one line\nrest", true);
        server.handle_request().unwrap();
        let mut expected = vec![
            "verify_request",
            "process_request",
            "finish_request",
            "setup",
            "handle",
            "finish",
        ];
        if fail_handle {
            expected.push("handle_error(handler failed: handle failed)");
        }
        expected.extend(["shutdown_request", "close_request"]);
        let events = journal.events();
        let events: Vec<&str> = events
            .iter()
            .map(String::as_str)
            .filter(|e| !e.starts_with("server_activate"))
            .collect();
        assert_eq!(events, expected);
        assert_eq!(pipe.lock().unwrap().to_client, b"one line\n");
        assert!(pipe.lock().unwrap().closed);
    }
}

#[test]
fn upper_answers_lines_and_survives_an_overlong_one() {
    let journal = Journal::default();
    let listener = MockListener::default();
    let mut server = Server::new(
        listener.clone(),
        MockWaiter::default(),
        Sequential::new(Upper::<16>),
        hooks(&journal),
    );
    server.set_timeout(Some(Duration::from_secs(5)));
    let mut input = b"hello\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 5000));
    input.extend(b"\nstill here\nbye, no newline");
    let pipe = listener.connect(&input, true);
    server.handle_request().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&pipe.lock().unwrap().to_client),
        "HELLO\nERROR line too long\nSTILL HERE\nBYE, NO NEWLINE"
    );
    assert_eq!(journal.count("handle_error"), 0);
}

/// Counts words with the `embedded-io-async` `BufRead` trait alone, as a
/// generic parser would, and answers through `Write`.
#[derive(Debug, Clone, Default)]
struct WordCount;

impl<C: Connection> AsyncStreamRequestHandler<C> for WordCount {
    async fn handle(&mut self, req: &mut AsyncStreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        let (mut words, mut in_word) = (0usize, false);
        loop {
            let chunk = req.fill_buf().await?;
            if chunk.is_empty() {
                break;
            }
            for &b in chunk {
                let space = b.is_ascii_whitespace();
                if !space && !in_word {
                    words += 1;
                }
                in_word = !space;
            }
            let n = chunk.len();
            req.consume(n);
        }
        let mut answer = [0u8; 20];
        let mut at = answer.len();
        loop {
            at -= 1;
            answer[at] = b'0' + (words % 10) as u8;
            words /= 10;
            if words == 0 {
                break;
            }
        }
        // Through the trait, as generic formatting code would.
        Write::write_all(req, &answer[at..]).await?;
        Write::flush(req).await
    }
}

#[test]
fn the_async_request_is_an_embedded_io_async_bufread_and_write() {
    let journal = Journal::default();
    let listener = MockListener::default();
    let mut server = Server::new(
        listener.clone(),
        MockWaiter::default(),
        Sequential::<_, 8, 0>::with_buffers(Async(WordCount)),
        hooks(&journal),
    );
    server.set_timeout(Some(Duration::from_secs(5)));
    let pipe = listener.connect(b"the quick  brown\nfox jumps over\n the lazy dog", true);
    server.handle_request().unwrap();
    assert_eq!(pipe.lock().unwrap().to_client, b"9");
}
