//! The seed's protocol, byte for byte, and the seed's flaws pinned as fixed.

use crate::util;

use util::BackendKind;

use std::io::Read;
use std::time::Duration;

use selectloop::codec::{Chunks, Lines};
use selectloop::Config;
use util::{connect, read_n, write_all, Echo, Respond, Server, GREETING};

fn select_server(backend: BackendKind) -> Server {
    Server::start(
        Config::new().backend(backend).codec(Chunks::new(1024)),
        Respond,
    )
}

fn greeting_and_answer_are_exact(backend: BackendKind) {
    let server = select_server(backend);
    let mut client = connect(server.addr);
    assert_eq!(read_n(&mut client, GREETING.len()), b"Hello client-side");
    write_all(&mut client, b"ping");
    assert_eq!(read_n(&mut client, 14), b"response: ping");
    // Nothing more was sent.
    client
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut extra = [0; 1];
    assert!(client.read(&mut extra).is_err(), "unexpected extra bytes");
    drop(client);
    server.wait_for("close", |s| s.closed == 1);
}
per_backend!(greeting_and_answer_are_exact);

/// The seed's `message[w].pop()` answers the newest chunk first; two messages
/// that arrive before one `select()` round come back reversed. Here a
/// thousand lines sent back to back come back in order.
fn answers_arrive_in_order_not_lifo(backend: BackendKind) {
    let server = Server::start(
        Config::new().backend(backend).codec(Lines::new(64)),
        Echo::default(),
    );
    let mut client = connect(server.addr);
    let mut sent = Vec::new();
    for i in 0..1000 {
        sent.extend_from_slice(format!("message {i}\n").as_bytes());
    }
    write_all(&mut client, &sent);
    assert_eq!(read_n(&mut client, sent.len()), sent);
    let stats = server.stop();
    assert_eq!(stats.messages, 1000);
}
per_backend!(answers_arrive_in_order_not_lifo);

// ANCHOR: leaves
/// The seed crashes with `KeyError` when a client sends and leaves before its
/// answer is written; one bad client stops everyone. Here the others go on.
fn client_that_sends_and_leaves_does_not_disturb_others(backend: BackendKind) {
    let server = select_server(backend);
    let mut steady = connect(server.addr);
    assert_eq!(read_n(&mut steady, GREETING.len()), GREETING);
    for round in 0..50 {
        let mut rude = connect(server.addr);
        write_all(&mut rude, b"x");
        drop(rude); // gone before the answer, often with an RST in flight
        let msg = format!("still there {round}");
        write_all(&mut steady, msg.as_bytes());
        let expect = format!("response: {msg}");
        assert_eq!(read_n(&mut steady, expect.len()), expect.as_bytes());
    }
    let stats = server.wait_for("the rude clients to be closed", |s| s.closed == 50);
    assert_eq!(stats.accepted, 51);
    // A newcomer is still served.
    let mut late = connect(server.addr);
    assert_eq!(read_n(&mut late, GREETING.len()), GREETING);
}
per_backend!(client_that_sends_and_leaves_does_not_disturb_others);
// ANCHOR_END: leaves

/// A message longer than the codec allows closes that connection with a
/// logged reason; the other connections keep everything they had queued.
fn oversize_frame_closes_only_its_connection(backend: BackendKind) {
    let echo = Echo::default();
    let closes = echo.closes.clone();
    let server = Server::start(Config::new().backend(backend).codec(Lines::new(16)), echo);
    let mut good = connect(server.addr);
    let mut bad = connect(server.addr);
    write_all(&mut good, b"first\n");
    assert_eq!(read_n(&mut good, 6), b"first\n");
    write_all(&mut bad, &[b'a'; 100]);
    let mut rest = Vec::new();
    // The server closes `bad`: reading ends (EOF or reset), no echo arrives.
    let _ = bad.read_to_end(&mut rest);
    assert!(rest.is_empty(), "oversize line was echoed: {rest:?}");
    let stats = server.wait_for("the bad connection to close", |s| s.closed == 1);
    assert_eq!(stats.frames_too_long, 1);
    write_all(&mut good, b"second\n");
    assert_eq!(read_n(&mut good, 7), b"second\n");
    let closes = closes.lock().unwrap();
    assert_eq!(closes.len(), 1);
    assert!(closes[0].1.contains("frame too long"), "{closes:?}");
}
per_backend!(oversize_frame_closes_only_its_connection);

// ANCHOR: framing
/// TCP has no message boundaries: with the seed's chunks, `one` and `two`
/// sent back to back may come back as one answer. With lines they are two.
fn lines_keep_message_boundaries_that_chunks_lose(backend: BackendKind) {
    let server = Server::start(
        Config::new().backend(backend).codec(Lines::new(64)),
        Respond,
    );
    let mut client = connect(server.addr);
    assert_eq!(read_n(&mut client, GREETING.len()), GREETING);
    write_all(&mut client, b"one\ntwo\n");
    assert_eq!(read_n(&mut client, 26), b"response: oneresponse: two");
}
per_backend!(lines_keep_message_boundaries_that_chunks_lose);
// ANCHOR_END: framing

/// A peer that shuts down its sending side still gets every answer owed to
/// it before the server closes (0 bytes read is end of input, not an error).
fn half_closed_peer_gets_its_answers_then_eof(backend: BackendKind) {
    let server = Server::start(
        Config::new().backend(backend).codec(Lines::new(64)),
        Echo::default(),
    );
    let mut client = connect(server.addr);
    write_all(&mut client, b"a\nb\nlast without newline");
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let got = util::read_to_end(&mut client).unwrap();
    assert_eq!(got, b"a\nb\nlast without newline\n");
    let closes = server.wait_for("close", |s| s.closed == 1);
    assert_eq!(closes.messages, 3);
}
per_backend!(half_closed_peer_gets_its_answers_then_eof);
