//! Typed frames: a decoder hands the handler what it parsed beside the
//! bytes (its `Item`), and may discard bytes, even ones not arrived yet,
//! without the loop buffering them.

use crate::util;

use util::BackendKind;

use std::io::ErrorKind;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use selectloop::codec::{DecodeError, Decoder, Frame};
use selectloop::{CloseReason, Config, ConnId, Context, Handler, Reactor};
use util::{connect, read_n, write_all, Server};

// ANCHOR: typed
/// What one line of the toy protocol says, parsed once by the decoder.
#[derive(Debug, PartialEq)]
enum Command {
    /// `PUT <key> <n>` then `n` bytes of value: the key is a place in the
    /// payload, the value the rest of it.
    Put {
        key: Range<usize>,
        value: Range<usize>,
    },
    /// `GET <key>`
    Get { key: Range<usize> },
}

/// Lines of `PUT key n` (and its value) or `GET key`. A value longer than
/// `max_value` is refused: the line and the value are discarded by the
/// length the line announced, before the value arrives.
struct Commands {
    max_value: usize,
    /// Decode calls, to show each message is parsed once.
    calls: Arc<Mutex<usize>>,
}

impl Decoder for Commands {
    type Item = Command;

    fn decode(&mut self, buf: &[u8]) -> Result<Option<Frame<Command>>, DecodeError> {
        *self.calls.lock().unwrap() += 1;
        let Some(end) = buf.iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let line = &buf[..end];
        let words: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        match words.as_slice() {
            [b"GET", key] => {
                let key = 4..4 + key.len();
                Ok(Some(Frame::with_item(
                    0..end,
                    end + 1,
                    Command::Get { key },
                )))
            }
            [b"PUT", key, len] => {
                let len: usize = std::str::from_utf8(len)
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .ok_or(DecodeError::invalid("bad length"))?;
                if len > self.max_value {
                    // The line and the value go; nothing of them is kept.
                    return Ok(Some(Frame::discard(end + 1 + len)));
                }
                let whole = end + 1 + len;
                if buf.len() < whole {
                    return Ok(None);
                }
                let key = 4..4 + key.len();
                let value = end + 1..whole;
                Ok(Some(Frame::with_item(
                    0..whole,
                    whole,
                    Command::Put { key, value },
                )))
            }
            _ => Err(DecodeError::invalid("unknown command")),
        }
    }
}

/// A store answering `GET` with the value, `PUT` with `OK`.
#[derive(Default)]
struct Store {
    values: std::collections::HashMap<Vec<u8>, Vec<u8>>,
    closed: Arc<Mutex<Vec<String>>>,
}

impl Handler<Command> for Store {
    fn on_item(&mut self, cx: &mut Context<'_>, conn: ConnId, command: Command, bytes: &[u8]) {
        match command {
            Command::Put { key, value } => {
                self.values
                    .insert(bytes[key].to_vec(), bytes[value].to_vec());
                let _ = cx.send(conn, b"OK\n");
            }
            Command::Get { key } => {
                let value = self.values.get(&bytes[key]).map_or(&b"NONE"[..], |v| v);
                let _ = cx.send_parts(conn, &[value, b"\n"]);
            }
        }
    }

    fn on_close(&mut self, _cx: &mut Context<'_>, _conn: ConnId, reason: &CloseReason) {
        self.closed.lock().unwrap().push(reason.to_string());
    }
}
// ANCHOR_END: typed

fn store_server(
    backend: BackendKind,
    max_message: usize,
    max_value: usize,
) -> (Server, Arc<Mutex<usize>>) {
    let calls = Arc::new(Mutex::new(0));
    let decoder_calls = calls.clone();
    let config = Config::new()
        .backend(backend)
        .decoder(max_message, move || Commands {
            max_value,
            calls: decoder_calls.clone(),
        });
    (Server::start(config, Store::default()), calls)
}

fn the_handler_gets_what_the_decoder_parsed_with_the_payload(backend: BackendKind) {
    let (server, calls) = store_server(backend, 1024, 64);
    let mut client = connect(server.addr);
    write_all(&mut client, b"PUT colour 4\nblueGET colour\nGET shape\n");
    assert_eq!(read_n(&mut client, 3 + 5 + 5), b"OK\nblue\nNONE\n");
    let stats = server.stop();
    assert_eq!(stats.messages, 3);
    // Three messages, and at most one call that found nothing per read:
    // the handler parsed nothing again, and the decoder once per message.
    assert!(
        *calls.lock().unwrap() <= 3 + 3,
        "decode calls: {}",
        calls.lock().unwrap()
    );
}
per_backend!(the_handler_gets_what_the_decoder_parsed_with_the_payload);

/// A discard announced by length reaches past what is buffered: the loop
/// drops the bytes as they come, never holds them (the connection's
/// maximum message is 1 KiB, the value 1 MiB), and the next command is
/// answered.
fn a_discard_longer_than_the_buffer_drops_bytes_as_they_arrive(backend: BackendKind) {
    let (server, calls) = store_server(backend, 1024, 64);
    let mut client = connect(server.addr);
    let big = 1 << 20;
    write_all(&mut client, format!("PUT huge {big}\n").as_bytes());
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..big / chunk.len() {
        write_all(&mut client, &chunk);
    }
    write_all(&mut client, b"PUT small 2\nokGET huge\nGET small\n");
    assert_eq!(read_n(&mut client, 3 + 5 + 3), b"OK\nNONE\nok\n");
    let stats = server.stop();
    assert_eq!(stats.messages, 3, "the discard is no message");
    assert_eq!(stats.frames_too_long, 0);
    // While the value arrives the decoder is not asked: a few calls for
    // the three commands, none per piece of the megabyte.
    let calls = *calls.lock().unwrap();
    assert!(calls < 16, "decode calls: {calls}");
}
per_backend!(a_discard_longer_than_the_buffer_drops_bytes_as_they_arrive);

/// The message deadline holds for discarded bytes too: a peer that
/// announces a value it will not send does not hold the connection.
fn a_discard_that_never_ends_runs_into_the_message_deadline(backend: BackendKind) {
    let closed = Arc::new(Mutex::new(Vec::new()));
    let store = Store {
        closed: closed.clone(),
        ..Store::default()
    };
    let config = Config::new()
        .backend(backend)
        .message_deadline(Duration::from_millis(100))
        .decoder(1024, move || Commands {
            max_value: 64,
            calls: Arc::default(),
        });
    let server = Server::start(config, store);
    let mut client = connect(server.addr);
    write_all(&mut client, b"PUT huge 100000\nsome of it");
    let stats = server.wait_for("the deadline", |s| s.deadline_kicks == 1);
    assert_eq!(stats.closed, 1);
    assert_eq!(
        closed.lock().unwrap().as_slice(),
        [CloseReason::MessageTimeout.to_string()]
    );
}
per_backend!(a_discard_that_never_ends_runs_into_the_message_deadline);

/// A handler of bytes alone works with a decoder of items: it is given the
/// payload, and the items are dropped.
fn a_handler_of_bytes_takes_a_decoder_of_items(backend: BackendKind) {
    let config = Config::new().backend(backend).decoder(1024, || Commands {
        max_value: 64,
        calls: Arc::default(),
    });
    let server = Server::start(config, util::Echo::default());
    let mut client = connect(server.addr);
    write_all(&mut client, b"GET a\nGET b\n");
    assert_eq!(read_n(&mut client, 12), b"GET a\nGET b\n");
}
per_backend!(a_handler_of_bytes_takes_a_decoder_of_items);

/// A handler of one item type on a reactor whose framing makes another
/// (or none): refused before the first turn, with both types named.
#[test]
fn a_handler_of_other_items_is_refused_at_once() {
    let mut store = Store::default();
    let mut reactor = Reactor::new().unwrap();
    let error = reactor
        .run_once(&mut store, Some(Duration::ZERO))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    let text = error.to_string();
    assert!(text.contains("Command") && text.contains("()"), "{text}");
    assert_eq!(reactor.stats().turns, 0);
    let mut reactor = Reactor::with_config(Config::new().decoder(1024, || Commands {
        max_value: 1,
        calls: Arc::default(),
    }))
    .unwrap();
    reactor.run_once(&mut store, Some(Duration::ZERO)).unwrap();
}
