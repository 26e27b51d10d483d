//! Partial writes: output larger than the socket buffer, to a slow reader.

use crate::util;

use util::BackendKind;

use std::io::Read;
use std::thread;
use std::time::Duration;

use selectloop::codec::Lines;
use selectloop::{Config, ConnId, Context, Handler};
use util::{connect, write_all, Server};

/// Answers `big\n` with 16 MiB of a pattern no two offsets share locally:
/// more than a socket's send buffer grows to (Linux's `tcp_wmem` allows
/// 4 MiB), so the server's writes block on every backend, io_uring's
/// included (its sends wait inside the kernel until the buffer is full).
struct Big;

const BIG: usize = 16 * 1024 * 1024;

fn pattern(i: usize) -> u8 {
    (i % 251) as u8 ^ (i / 251 % 256) as u8
}

impl Handler for Big {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
        if msg == b"big" {
            let answer: Vec<u8> = (0..BIG).map(pattern).collect();
            cx.send(conn, &answer).unwrap();
        } else {
            cx.send_frame(conn, msg).unwrap();
        }
    }
}

// ANCHOR: slow_reader
/// The seed's `sendall` blocks the whole server while one client is slow to
/// read. Here a 16 MiB answer goes out in many partial writes, byte-exact,
/// while another client is served at once, and the slow connection leaves
/// the writable set when its buffer is empty.
fn large_answer_to_slow_reader_arrives_byte_exact(backend: BackendKind) {
    let server = Server::start(Config::new().backend(backend).codec(Lines::new(64)), Big);
    let mut slow = connect(server.addr);
    slow.set_recv_buffer_size_hint();
    write_all(&mut slow, b"big\n");
    server.wait_for("the socket buffer to fill", |s| s.writes_blocked >= 1);
    // The slow connection is in the writable set, and still reads: the
    // inputs are the listener and `slow`, the outputs `slow`.
    util::wait_until("the slow connection to wait for WRITABLE", || {
        (server.inputs_outputs() == (2, 1)).then_some(())
    });

    // Meanwhile another client is not kept waiting.
    let mut quick = connect(server.addr);
    write_all(&mut quick, b"hello\n");
    assert_eq!(util::read_n(&mut quick, 6), b"hello\n");

    let mut got = Vec::with_capacity(BIG);
    let mut buf = [0u8; 7000];
    while got.len() < BIG {
        let n = slow.read(&mut buf).expect("read");
        assert!(n > 0, "server closed after {} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
        if got.len() < 256 * 1024 {
            thread::sleep(Duration::from_micros(200)); // read slowly at first
        }
    }
    assert_eq!(got.len(), BIG);
    if let Some(i) = (0..BIG).find(|&i| got[i] != pattern(i)) {
        panic!("byte {i} differs");
    }
    // Output drained: the connection left the writable set, and is served
    // by reads again.
    write_all(&mut slow, b"after\n");
    assert_eq!(util::read_n(&mut slow, 6), b"after\n");
    util::wait_until("the writable set to empty", || {
        (server.inputs_outputs() == (3, 0)).then_some(())
    });
    let stats = server.stop();
    assert!(stats.writes_blocked >= 1);
    assert!(stats.bytes_written >= BIG as u64);
}
per_backend!(large_answer_to_slow_reader_arrives_byte_exact);
// ANCHOR_END: slow_reader

trait SmallBuffer {
    fn set_recv_buffer_size_hint(&self);
}

impl SmallBuffer for std::net::TcpStream {
    /// A small receive buffer makes the server's writes block sooner.
    fn set_recv_buffer_size_hint(&self) {
        let socket = socket2::SockRef::from(self);
        let _ = socket.set_recv_buffer_size(16 * 1024);
    }
}
