//! The buffered reader and writer of core's stream requests, fed arbitrary
//! bytes in arbitrary chunkings through an in-memory connection, on the
//! blocking `StreamRequest` and on the async `AsyncStreamRequest` (polled
//! with a no-op waker: a blocking-mode request must be ready at once).
//!
//! Checked against a model of the byte stream: no panic; every byte is
//! delivered exactly once and in order, whatever mix of `read_line` (with
//! its maximum), `discard_line`, `read_exact`, `read` and `fill_buf` reads
//! it; a line is never longer than its maximum; an overlong line is
//! `Error::LineTooLong` after exactly its first `max` bytes; `read_exact`
//! fails with `Error::UnexpectedEof` only when the stream ends first; every
//! byte written reaches the connection once, in order, by the flush.
#![no_main]

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use socketserver_core::embedded_io_async::BufRead as _;
use socketserver_core::{Error, InlineServer, ShutdownFlag, StreamRequest};
use socketserver_fuzz::decode::{byte, bytes, word};
use socketserver_fuzz::{MemError, MemStream};

#[derive(Debug)]
enum Op {
    /// `read_line` into a buffer of this many bytes.
    ReadLine(u8),
    DiscardLine,
    ReadExact(u8),
    Read(u8),
    /// `fill_buf`, then `consume` of this many of its bytes (async only;
    /// the blocking request reads instead).
    FillBuf(u8),
    /// `write_all` of this many bytes of a running pattern.
    Write(u8),
    Flush,
}

#[derive(Debug)]
struct Input {
    /// Read-ahead capacity (0: unbuffered).
    rbuf: u8,
    /// Write buffer capacity (0: unbuffered).
    wbuf: u8,
    /// The largest read and write each call of the connection performs, in
    /// turn (0 counts as 1).
    chunks: Vec<u8>,
    ops: Vec<Op>,
    /// The bytes the peer sends, then EOF. One byte in 16 is made a newline.
    data: Vec<u8>,
}

/// Input layout: rbuf, wbuf, a counted list of chunks, a 2-byte length
/// and the data, then operations of an opcode byte and an argument byte.
impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let rbuf = byte(u)?;
        let wbuf = byte(u)?;
        let chunks = bytes(u, 8)?;
        let n = usize::from(word(u)? % 2048);
        let data = u.bytes(n.min(u.len()))?.to_vec();
        let mut ops = Vec::new();
        while !u.is_empty() {
            let (op, arg) = (byte(u)?, byte(u)?);
            ops.push(match op % 7 {
                0 => Op::ReadLine(arg),
                1 => Op::DiscardLine,
                2 => Op::ReadExact(arg),
                3 => Op::Read(arg),
                4 => Op::FillBuf(arg),
                5 => Op::Write(arg),
                _ => Op::Flush,
            });
        }
        Ok(Input {
            rbuf,
            wbuf,
            chunks,
            ops,
            data,
        })
    }
}

/// What one call returned, for comparing the two requests.
type Outcome = Result<usize, Error<MemError>>;

/// The byte stream as the reader must deliver it.
struct Model<'a> {
    data: &'a [u8],
    pos: usize,
    written: Vec<u8>,
    pattern: u8,
}

impl Model<'_> {
    fn rest(&self) -> &[u8] {
        &self.data[self.pos..]
    }

    /// Checks a `read_line(max)` result and the line it produced.
    fn read_line(&mut self, max: usize, got: Outcome, line: &[u8]) {
        let rest = self.rest();
        let window = &rest[..rest.len().min(max)];
        match window.iter().position(|&b| b == b'\n') {
            Some(i) => {
                assert_eq!(got, Ok(i + 1), "a line within the maximum");
                assert_eq!(&line[..i + 1], &rest[..i + 1]);
                self.pos += i + 1;
            }
            // A line that fills the buffer without a newline is too long,
            // even when EOF follows: an unbuffered reader cannot tell
            // without consuming a byte past the buffer.
            None if rest.len() < max => {
                assert_eq!(got, Ok(rest.len()), "the last line, cut by EOF");
                assert_eq!(&line[..rest.len()], rest);
                self.pos += rest.len();
            }
            None => {
                assert_eq!(got, Err(Error::LineTooLong), "a line over {max} bytes");
                assert_eq!(&line[..max], &rest[..max], "its first {max} bytes");
                self.pos += max;
            }
        }
    }

    fn discard_line(&mut self, got: Outcome) {
        let rest = self.rest();
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        assert_eq!(got, Ok(n), "dropped up to and with the newline");
        self.pos += n;
    }

    fn read_exact(&mut self, got: Result<(), Error<MemError>>, out: &[u8]) {
        let rest = self.rest();
        if rest.len() >= out.len() {
            assert_eq!(got, Ok(()));
            assert_eq!(out, &rest[..out.len()]);
            self.pos += out.len();
        } else {
            assert_eq!(got, Err(Error::UnexpectedEof));
            // What it read is gone with the failed call.
            self.pos = self.data.len();
        }
    }

    /// A `read`, or bytes a `fill_buf` showed and were consumed.
    fn read(&mut self, wanted: usize, got: &[u8]) {
        let rest = self.rest();
        assert!(got.len() <= wanted, "more than asked for");
        if wanted > 0 && !rest.is_empty() {
            assert!(!got.is_empty(), "no byte before EOF");
        }
        assert_eq!(got, &rest[..got.len()], "the next bytes");
        self.pos += got.len();
    }

    /// Bytes `fill_buf` showed and `consume` took.
    fn consume(&mut self, taken: &[u8]) {
        assert_eq!(taken, &self.rest()[..taken.len()], "the next bytes");
        self.pos += taken.len();
    }

    fn next_pattern(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.pattern = self.pattern.wrapping_add(1);
                self.pattern
            })
            .collect()
    }
}

/// Polls a blocking-mode request's future once: it must be ready.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a request over a blocking connection pended"),
    }
}

fn run(input: &Input, data: &[u8], use_async: bool) {
    let mut conn = MemStream::new(data, &input.chunks);
    let addr = 7u16;
    let rbuf_len = usize::from(input.rbuf % 65);
    let mut rbuf = vec![0u8; rbuf_len];
    let mut wbuf = vec![0u8; usize::from(input.wbuf % 33)];
    let mut model = Model {
        data,
        pos: 0,
        written: Vec::new(),
        pattern: 0,
    };
    {
        let flag = ShutdownFlag::new();
        let server = InlineServer::new(&addr, &flag);
        let mut blocking = StreamRequest::new(&mut conn, &addr, &server, &mut rbuf, &mut wbuf);
        let mut req_async;
        let mut out = [0u8; 256];
        for op in &input.ops {
            match *op {
                Op::ReadLine(max) => {
                    let max = usize::from(max);
                    out.fill(0);
                    let line = &mut out[..max];
                    let got = if use_async {
                        ready(blocking.as_async().read_line(line))
                    } else {
                        blocking.read_line(line)
                    };
                    if let Ok(n) = got {
                        assert!(n <= max, "a line longer than its maximum");
                    }
                    model.read_line(max, got, line);
                }
                Op::DiscardLine => {
                    let got = if use_async {
                        ready(blocking.as_async().discard_line())
                    } else {
                        blocking.discard_line()
                    };
                    model.discard_line(got);
                }
                Op::ReadExact(n) => {
                    let buf = &mut out[..usize::from(n)];
                    let got = if use_async {
                        ready(blocking.as_async().read_exact(buf))
                    } else {
                        blocking.read_exact(buf)
                    };
                    model.read_exact(got, buf);
                }
                Op::Read(n) => {
                    let buf = &mut out[..usize::from(n)];
                    let got = if use_async {
                        ready(blocking.as_async().read(buf))
                    } else {
                        blocking.read(buf)
                    };
                    let n = got.expect("an in-memory read cannot fail");
                    model.read(buf.len(), &buf[..n]);
                }
                Op::FillBuf(k) if use_async => {
                    req_async = blocking.as_async();
                    let shown = ready(req_async.fill_buf()).expect("cannot fail");
                    if rbuf_len > 0 && !model.rest().is_empty() {
                        assert!(!shown.is_empty(), "fill_buf empty before EOF");
                    }
                    let take = usize::from(k).min(shown.len());
                    let taken = shown[..take].to_vec();
                    let shown = shown.to_vec();
                    // What it shows is what comes next, consumed or not.
                    assert_eq!(&shown[..], &model.rest()[..shown.len()]);
                    req_async.consume(take);
                    model.consume(&taken);
                }
                Op::FillBuf(_) => {}
                Op::Write(n) => {
                    let bytes = model.next_pattern(usize::from(n));
                    let got = if use_async {
                        ready(blocking.as_async().write_all(&bytes))
                    } else {
                        blocking.write_all(&bytes)
                    };
                    assert_eq!(got, Ok(()));
                    model.written.extend_from_slice(&bytes);
                }
                Op::Flush => {
                    let got = if use_async {
                        ready(blocking.as_async().flush())
                    } else {
                        blocking.flush()
                    };
                    assert_eq!(got, Ok(()));
                    assert_eq!(blocking.connection().sent(), &model.written[..]);
                }
            }
            let sent = blocking.connection().sent();
            assert_eq!(sent, &model.written[..sent.len()], "sent in order, once");
        }
        assert_eq!(blocking.flush(), Ok(()));
    }
    assert_eq!(conn.sent(), &model.written[..], "every written byte, once");
    assert!(
        conn.delivered() >= model.pos,
        "the connection gave the reader every byte it returned"
    );
}

fuzz_target!(|input: Input| {
    let data: Vec<u8> = input
        .data
        .iter()
        .map(|&b| if b % 16 == 10 { b'\n' } else { b })
        .collect();
    run(&input, &data, false);
    run(&input, &data, true);
});
