//! Lingering close: a connection the server closes while its peer is still
//! sending gets its answer, then end of file, never a reset; a peer that
//! never closes is let go after `Config::lingering_close`.

use crate::util;

use util::BackendKind;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use selectloop::codec::{DecodeError, Lines};
use selectloop::{Config, ConnId, Context, Handler};
use util::{connect, Server};

/// Echoes lines; answers a refused one with a sentence before it closes.
struct Refuses;

impl Handler for Refuses {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, line: &[u8]) {
        let _ = cx.send_frame(conn, line);
    }

    fn on_decode_error(&mut self, cx: &mut Context<'_>, conn: ConnId, _error: &DecodeError) {
        let _ = cx.send(conn, b"line too long\n");
    }
}

/// A line server on `backend` that answers refusals, lingering `linger`.
fn refusing_server(backend: BackendKind, linger: Duration) -> Server {
    Server::start(
        Config::new()
            .backend(backend)
            .codec(Lines::new(1024))
            .lingering_close(linger),
        Refuses,
    )
}

/// Writes an oversize line and keeps writing (as a client uploading a body
/// the server refused does), on a thread; returns it.
fn flood(client: &TcpStream) -> thread::JoinHandle<()> {
    let mut writer = client.try_clone().unwrap();
    thread::spawn(move || {
        // Half a megabyte: the loop discards up to a megabyte after its
        // goodbye before it gives up on a peer.
        let chunk = [b'x'; 16 * 1024];
        for _ in 0..32 {
            if writer.write_all(&chunk).is_err() {
                break;
            }
        }
    })
}

/// 20 times: the answer to the refusal arrives whole, then end of file,
/// though the client was still sending when the server closed; and the
/// server closes each as soon as its client does (the linger time is set
/// far past the test's patience, so a lingering connection the loop stopped
/// reading would fail it).
fn the_answer_to_a_refusal_arrives_instead_of_a_reset(backend: BackendKind) {
    let server = refusing_server(backend, Duration::from_secs(600));
    for round in 0..20 {
        let mut client = connect(server.addr);
        client.write_all(b"first\n").unwrap();
        let writer = flood(&client);
        let mut got = Vec::new();
        let read = client.read_to_end(&mut got);
        assert!(read.is_ok(), "round {round}: {read:?} after {got:?}");
        assert_eq!(got, b"first\nline too long\n", "round {round}");
        drop(client);
        writer.join().unwrap();
        server.wait_for("the server to close once its client did", |s| {
            s.closed == round as u64 + 1
        });
    }
    let stats = server.stats();
    assert_eq!(stats.lingered, 20);
    assert_eq!(stats.frames_too_long, 20);
}
per_backend!(the_answer_to_a_refusal_arrives_instead_of_a_reset);

/// A peer that neither reads nor closes is closed once the linger time has
/// passed, and not before.
fn a_peer_that_never_closes_is_let_go_after_the_linger_time(backend: BackendKind) {
    let linger = Duration::from_millis(300);
    let server = refusing_server(backend, linger);
    let mut client = connect(server.addr);
    let started = Instant::now();
    client.write_all(&[b'x'; 2048]).unwrap(); // refused: over the maximum
    server.wait_for("the close to begin", |s| s.lingered == 1);
    let stats = server.wait_for("the lingering connection closed", |s| s.closed == 1);
    let took = started.elapsed();
    assert!(took >= linger, "closed after {took:?}");
    assert_eq!(stats.frames_too_long, 1);
    drop(client);
}
per_backend!(a_peer_that_never_closes_is_let_go_after_the_linger_time);

/// With `lingering_close(Duration::ZERO)` the close is immediate, as before.
#[test]
fn a_zero_linger_closes_at_once() {
    let server = Server::start(
        Config::new()
            .codec(Lines::new(1024))
            .lingering_close(Duration::ZERO),
        Refuses,
    );
    let client = connect(server.addr);
    (&client).write_all(&[b'x'; 2048]).unwrap();
    let stats = server.wait_for("the close", |s| s.closed == 1);
    assert_eq!(stats.lingered, 0);
    drop(client);
}

/// A peer that goes on sending a megabyte and more after the goodbye is
/// not reading it: the loop stops discarding and closes, long before the
/// linger time.
fn a_peer_that_keeps_sending_is_closed_after_a_megabyte(backend: BackendKind) {
    let server = refusing_server(backend, Duration::from_secs(600));
    let client = connect(server.addr);
    let mut writer = client.try_clone().unwrap();
    let sending = thread::spawn(move || {
        let chunk = [b'x'; 64 * 1024];
        let mut sent = 0;
        while sent < 4 * 1024 * 1024 {
            match writer.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break, // the reset: given up on
            }
        }
    });
    let stats = server.wait_for("the flooding peer to be closed", |s| s.closed == 1);
    assert_eq!(stats.lingered, 1);
    sending.join().unwrap();
    drop(client); // still open: only the server's cap can have closed it
}
per_backend!(a_peer_that_keeps_sending_is_closed_after_a_megabyte);
