//! Framing of the user's own: a `Decoder` per connection, with state, fed
//! the connection's bytes in place; its errors, and the loop's own limits,
//! close only the connection that sent the bytes, after its earlier
//! messages are answered.

use crate::util;

use util::BackendKind;

use std::borrow::Cow;

use selectloop::codec::{DecodeError, Decoder, Frame, Lines};
use selectloop::{CloseReason, Config, ConnId, Context, Handler};
use util::{connect, read_n, write_all, Server};

/// A protocol with a per-connection header: the first line says `SIZE n`,
/// after which every message is a record of exactly `n` bytes. The decoder
/// has to remember `n` between calls: state a built-in codec cannot keep.
#[derive(Default)]
struct Records {
    size: Option<usize>,
}

impl Decoder for Records {
    type Item = ();
    fn decode(&mut self, buf: &[u8]) -> Result<Option<Frame>, DecodeError> {
        match self.size {
            Some(n) => Ok((buf.len() >= n).then(|| Frame::new(0..n, n))),
            None => {
                let Some(end) = buf.iter().position(|&b| b == b'\n') else {
                    return Ok(None);
                };
                let size = std::str::from_utf8(&buf[..end])
                    .ok()
                    .and_then(|line| line.strip_prefix("SIZE "))
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|&n| n > 0)
                    .ok_or(DecodeError::invalid("expected SIZE n with n > 0"))?;
                self.size = Some(size);
                // The header is a message too (an empty one).
                Ok(Some(Frame::new(0..0, end + 1)))
            }
        }
    }
}

/// Answers each record with `<record>` and a decode error with `-ERR why`.
#[derive(Default)]
struct Answer {
    closed: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Handler for Answer {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, record: &[u8]) {
        if !record.is_empty() {
            let _ = cx.send_parts(conn, &[b"<", record, b">"]);
        }
    }

    fn on_decode_error(&mut self, cx: &mut Context<'_>, conn: ConnId, error: &DecodeError) {
        let why: Cow<'_, str> = match error {
            DecodeError::Invalid(why) => why.clone(),
            other => other.to_string().into(),
        };
        let _ = cx.send(conn, format!("-ERR {why}\n").as_bytes());
    }

    fn on_close(&mut self, _cx: &mut Context<'_>, _conn: ConnId, reason: &CloseReason) {
        self.closed.lock().unwrap().push(reason.to_string());
    }
}

fn records_server(
    backend: BackendKind,
    max: usize,
) -> (Server, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let handler = Answer::default();
    let closed = handler.closed.clone();
    let config = Config::new()
        .backend(backend)
        .decoder(max, Records::default);
    (Server::start(config, handler), closed)
}

fn a_stateful_decoder_frames_each_connection_on_its_own_split_at_every_byte(backend: BackendKind) {
    let (server, _) = records_server(backend, 1024);
    let mut three = connect(server.addr);
    let mut five = connect(server.addr);
    // Interleaved, a byte at a time: each connection keeps its own size.
    let a = b"SIZE 3\nabcdefghi";
    let b = b"SIZE 5\n0123456789";
    for i in 0..a.len().max(b.len()) {
        if let Some(byte) = a.get(i) {
            write_all(&mut three, std::slice::from_ref(byte));
        }
        if let Some(byte) = b.get(i) {
            write_all(&mut five, std::slice::from_ref(byte));
        }
    }
    assert_eq!(read_n(&mut three, 15), b"<abc><def><ghi>");
    assert_eq!(read_n(&mut five, 14), b"<01234><56789>");
    let stats = server.stop();
    assert_eq!(stats.messages, 2 + 5, "two headers and five records");
}
per_backend!(a_stateful_decoder_frames_each_connection_on_its_own_split_at_every_byte);

fn a_decode_error_is_answered_after_earlier_messages_then_closes_only_that_connection(
    backend: BackendKind,
) {
    let (server, closed) = records_server(backend, 1024);
    let mut good = connect(server.addr);
    let mut bad = connect(server.addr);
    write_all(&mut good, b"SIZE 2\nok");
    assert_eq!(read_n(&mut good, 4), b"<ok>");
    // A header the decoder refuses.
    write_all(&mut bad, b"SIZE 0\n");
    let answer = util::read_to_end(&mut bad).unwrap();
    // Answered and closed: a client leaves then, which ends the
    // server's lingering close at once.
    drop(bad);
    assert_eq!(
        String::from_utf8_lossy(&answer),
        "-ERR expected SIZE n with n > 0\n"
    );
    let stats = server.wait_for("the protocol error", |s| s.protocol_errors == 1);
    assert_eq!(stats.closed, 1);
    assert_eq!(
        closed.lock().unwrap().as_slice(),
        ["protocol error: expected SIZE n with n > 0"]
    );
    write_all(&mut good, b"on");
    assert_eq!(
        read_n(&mut good, 4),
        b"<on>",
        "the other client is still served"
    );
}
per_backend!(a_decode_error_is_answered_after_earlier_messages_then_closes_only_that_connection);

/// The built-in codecs take the same path: a line over the maximum is
/// refused after the lines before it are answered (they used to be dropped
/// with the connection).
fn lines_before_an_oversize_line_are_answered_first(backend: BackendKind) {
    let server = Server::start(
        Config::new().backend(backend).codec(Lines::new(4)),
        util::Echo::default(),
    );
    let mut client = connect(server.addr);
    write_all(&mut client, b"one\ntwo\nmuch too long\n");
    let answer = util::read_to_end(&mut client).unwrap();
    // Answered and closed: a client leaves then, which ends the
    // server's lingering close at once.
    drop(client);
    assert_eq!(answer, b"one\ntwo\n");
    let stats = server.wait_for("the refusal", |s| s.frames_too_long == 1);
    assert_eq!(stats.messages, 2);
}
per_backend!(lines_before_an_oversize_line_are_answered_first);

/// A decoder that never finds a message end: the loop's maximum cuts the
/// connection off, whatever the decoder says.
struct NeverDone;

impl Decoder for NeverDone {
    type Item = ();
    fn decode(&mut self, _buf: &[u8]) -> Result<Option<Frame>, DecodeError> {
        Ok(None)
    }
}

fn the_loop_enforces_the_maximum_whatever_the_decoder_says(backend: BackendKind) {
    let server = Server::start(
        Config::new().backend(backend).decoder(100, || NeverDone),
        Answer::default(),
    );
    let mut client = connect(server.addr);
    write_all(&mut client, &[b'x'; 101]);
    let answer = util::read_to_end(&mut client).unwrap();
    // Answered and closed: a client leaves then, which ends the
    // server's lingering close at once.
    drop(client);
    assert!(
        answer.starts_with(b"-ERR message of 101 bytes"),
        "{answer:?}"
    );
    let stats = server.wait_for("the refusal", |s| s.frames_too_long == 1);
    assert_eq!(stats.messages, 0);
}
per_backend!(the_loop_enforces_the_maximum_whatever_the_decoder_says);

/// A buggy decoder that claims a frame but consumes nothing would make the
/// loop ask it forever; the loop refuses such a frame instead.
struct ConsumesNothing;

impl Decoder for ConsumesNothing {
    type Item = ();
    fn decode(&mut self, buf: &[u8]) -> Result<Option<Frame>, DecodeError> {
        Ok((!buf.is_empty()).then(|| Frame::new(0..0, 0)))
    }
}

fn a_frame_that_consumes_nothing_is_refused_not_looped_on(backend: BackendKind) {
    let server = Server::start(
        Config::new()
            .backend(backend)
            .decoder(100, || ConsumesNothing),
        Answer::default(),
    );
    let mut client = connect(server.addr);
    write_all(&mut client, b"anything");
    let answer = util::read_to_end(&mut client).unwrap();
    // Answered and closed: a client leaves then, which ends the
    // server's lingering close at once.
    drop(client);
    assert!(
        String::from_utf8_lossy(&answer).contains("outside the bytes it was given"),
        "{answer:?}"
    );
    server.wait_for("the refusal", |s| s.protocol_errors == 1);
}
per_backend!(a_frame_that_consumes_nothing_is_refused_not_looped_on);

/// What the peer leaves unframed at the end of its input goes to
/// `decode_eof`: here, a last record shorter than the size is refused.
struct StrictRecords(Records);

impl Decoder for StrictRecords {
    type Item = ();
    fn decode(&mut self, buf: &[u8]) -> Result<Option<Frame>, DecodeError> {
        self.0.decode(buf)
    }

    fn decode_eof(&mut self, buf: &[u8]) -> Result<Option<Frame>, DecodeError> {
        if buf.is_empty() {
            Ok(None)
        } else {
            Err(DecodeError::invalid(format!(
                "{} bytes of a record left",
                buf.len()
            )))
        }
    }
}

fn a_partial_message_at_end_of_input_goes_to_decode_eof(backend: BackendKind) {
    let server = Server::start(
        Config::new()
            .backend(backend)
            .decoder(100, || StrictRecords(Records::default())),
        Answer::default(),
    );
    let mut client = connect(server.addr);
    write_all(&mut client, b"SIZE 4\nabcdef");
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let answer = util::read_to_end(&mut client).unwrap();
    // Answered and closed: a client leaves then, which ends the
    // server's lingering close at once.
    drop(client);
    assert_eq!(
        String::from_utf8_lossy(&answer),
        "<abcd>-ERR 2 bytes of a record left\n"
    );
    server.wait_for("the refusal", |s| s.protocol_errors == 1);
}
per_backend!(a_partial_message_at_end_of_input_goes_to_decode_eof);
