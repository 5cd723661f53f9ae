//! The buffered reader and writer: hard line limits, read_exact, write buffering.

use socketserver_core::embedded_io::{ErrorType, Write};
use socketserver_core::{BufReader, BufWriter, Error};

/// A transport that records what reaches it.
struct Sink<'a>(&'a mut Vec<u8>);

impl ErrorType for Sink<'_> {
    type Error = core::convert::Infallible;
}

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[test]
fn overlong_line_is_an_error_not_growth() {
    let mut storage = [0u8; 8];
    let input: &[u8] = b"0123456789abcdef\nshort\n";
    let mut reader = BufReader::new(input, &mut storage);
    let mut line = [0u8; 10];
    assert_eq!(reader.read_line(&mut line), Err(Error::LineTooLong));
    assert_eq!(
        &line, b"0123456789",
        "the partial line is what was consumed"
    );
    // The rest of the long line, then the next one: the reader stays usable.
    let n = reader.read_line(&mut line).unwrap();
    assert_eq!(&line[..n], b"abcdef\n");
    let n = reader.read_line(&mut line).unwrap();
    assert_eq!(&line[..n], b"short\n");
    assert_eq!(reader.read_line(&mut line).unwrap(), 0, "EOF");
}

#[test]
fn line_of_exactly_the_limit_fits() {
    let mut storage = [0u8; 4];
    let input: &[u8] = b"abc\n";
    let mut reader = BufReader::new(input, &mut storage);
    let mut line = [0u8; 4];
    assert_eq!(reader.read_line(&mut line).unwrap(), 4);
}

#[test]
fn unbuffered_reader_reads_lines_without_reading_ahead() {
    let input: &[u8] = b"one\ntwo";
    let mut reader = BufReader::new(input, &mut []);
    let mut line = [0u8; 16];
    let n = reader.read_line(&mut line).unwrap();
    assert_eq!(&line[..n], b"one\n");
    assert_eq!(
        reader.inner(),
        b"two",
        "nothing past the newline was consumed"
    );
    let n = reader.read_line(&mut line).unwrap();
    assert_eq!(&line[..n], b"two", "a last line without newline at EOF");
}

#[test]
fn read_exact_fails_at_early_eof() {
    let mut storage = [0u8; 4];
    let input: &[u8] = b"abc";
    let mut reader = BufReader::new(input, &mut storage);
    let mut out = [0u8; 5];
    assert_eq!(reader.read_exact(&mut out), Err(Error::UnexpectedEof));
}

#[test]
fn buffered_writer_holds_bytes_until_flush_and_unbuffered_does_not() {
    let mut sink = [0u8; 32];
    let mut storage = [0u8; 8];
    {
        let mut writer = BufWriter::new(&mut sink[..], &mut storage);
        writer.write_all(b"abc").unwrap();
        writer.flush().unwrap();
    }
    assert_eq!(&sink[..3], b"abc");

    let mut out: Vec<u8> = Vec::new();
    let mut storage = [0u8; 8];
    let mut writer = BufWriter::new(Sink(&mut out), &mut storage);
    writer.write_all(b"abc").unwrap();
    assert!(
        writer.inner().0.is_empty(),
        "buffered: nothing sent before flush"
    );
    writer.flush().unwrap();
    assert_eq!(writer.inner().0.as_slice(), b"abc");

    let mut out: Vec<u8> = Vec::new();
    let mut writer = BufWriter::new(Sink(&mut out), &mut []);
    writer.write_all(b"now").unwrap();
    assert_eq!(
        writer.inner().0.as_slice(),
        b"now",
        "wbufsize 0: sent before write_all returns"
    );
}

#[test]
fn unbuffered_overlong_line_consumes_nothing_past_its_maximum() {
    // Found by the `buffered` fuzz target: without read-ahead, the byte
    // after a full line buffer was read, then dropped with the error.
    let input: &[u8] = b"abcdef\nnext\n";
    let mut reader = BufReader::new(input, &mut []);
    let mut short = [0u8; 3];
    assert_eq!(reader.read_line(&mut short), Err(Error::LineTooLong));
    assert_eq!(&short, b"abc");
    assert_eq!(reader.inner(), b"def\nnext\n", "nothing past the buffer");
    let mut line = [0u8; 16];
    let n = reader.read_line(&mut line).unwrap();
    assert_eq!(&line[..n], b"def\n", "the rest of the line, whole");
    // The same when the discarded rest is a lone newline.
    let input: &[u8] = b"abc\nnext\n";
    let mut reader = BufReader::new(input, &mut []);
    assert_eq!(reader.read_line(&mut short), Err(Error::LineTooLong));
    assert_eq!(reader.discard_line(), Ok(1));
    let n = reader.read_line(&mut line).unwrap();
    assert_eq!(&line[..n], b"next\n");
}

#[test]
fn a_line_that_fills_the_buffer_without_newline_is_too_long_with_or_without_read_ahead() {
    for rbuf in [0, 2, 64] {
        let mut storage = vec![0u8; rbuf];
        let input: &[u8] = b"abc";
        let mut reader = BufReader::new(input, &mut storage);
        let mut line = [0u8; 3];
        assert_eq!(
            reader.read_line(&mut line),
            Err(Error::LineTooLong),
            "rbuf {rbuf}"
        );
        assert_eq!(reader.read_line(&mut line), Ok(0), "rbuf {rbuf}: then EOF");
        assert_eq!(
            reader.read_line(&mut []),
            Err(Error::LineTooLong),
            "rbuf {rbuf}"
        );
    }
}
