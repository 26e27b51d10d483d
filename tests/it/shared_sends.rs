//! `Context::send_shared`: one reference-counted buffer queued for many
//! connections without a copy, written in order among the copied bytes,
//! released once every connection has written it, and counted against the
//! output limit like any bytes.

use crate::util;

use util::BackendKind;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use selectloop::codec::Lines;
use selectloop::{Bytes, Config, ConnId, Context, Handler};
use util::{connect, Server};

/// A megabyte whose release is counted: the test sees when the last
/// connection holding it let go.
struct Counted {
    bytes: Vec<u8>,
    released: Arc<AtomicUsize>,
}

impl AsRef<[u8]> for Counted {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.released.fetch_add(1, Ordering::SeqCst);
    }
}

/// Answers `get` with a header, the shared value, and a trailer; the value
/// is made once.
struct Cache {
    value: Option<Bytes>,
}

impl Handler for Cache {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
        if msg != b"get" {
            return;
        }
        let Some(value) = &self.value else { return };
        let header = format!("VALUE {}\n", value.len());
        let _ = cx.send(conn, header.as_bytes());
        let _ = cx.send_shared(conn, value.clone());
        let _ = cx.send(conn, b"END\n");
    }
}

fn value_of(seed: u8) -> Vec<u8> {
    (0..1 << 20)
        .map(|i: u32| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

fn one_buffer_reaches_every_connection_in_order_then_is_released(backend: BackendKind) {
    let released = Arc::new(AtomicUsize::new(0));
    let value = value_of(7);
    let shared = Bytes::from_owner(Counted {
        bytes: value.clone(),
        released: released.clone(),
    });
    let server = Server::start(
        Config::new().backend(backend).codec(Lines::new(64)),
        Cache {
            value: Some(shared),
        },
    );
    let mut clients: Vec<_> = (0..20).map(|_| connect(server.addr)).collect();
    for client in &mut clients {
        client.write_all(b"get\nget\n").unwrap();
    }
    let header = format!("VALUE {}\n", value.len());
    let expected = [header.as_bytes(), &value, b"END\n"].concat();
    for client in &mut clients {
        for _ in 0..2 {
            let mut got = vec![0u8; expected.len()];
            client.read_exact(&mut got).unwrap();
            assert!(got == expected, "a reply out of order or damaged");
        }
    }
    let stats = server.stop();
    assert_eq!(stats.messages, 40);
    assert_eq!(
        released.load(Ordering::SeqCst),
        1,
        "the one buffer, released once the handler and every connection let go"
    );
}
per_backend!(one_buffer_reaches_every_connection_in_order_then_is_released);

/// A client that never reads is cut off at the output limit by shared
/// buffers as by copies; the others are served, and the buffer is released.
fn shared_bytes_count_against_the_output_limit(backend: BackendKind) {
    let released = Arc::new(AtomicUsize::new(0));
    let shared = Bytes::from_owner(Counted {
        bytes: value_of(1),
        released: released.clone(),
    });
    let server = Server::start(
        Config::new()
            .backend(backend)
            .codec(Lines::new(64))
            // Handling never pauses for the hog's output: only the limit
            // stands in its way.
            .output_watermarks(1 << 30, 1 << 30)
            .max_output(4 << 20),
        Cache {
            value: Some(shared),
        },
    );
    let mut hog = connect(server.addr);
    // One at a time, so that each lands in a turn of its own: the limit is
    // on what earlier turns left unread. Once cut off, writes fail.
    for _ in 0..64 {
        if hog.write_all(b"get\n").is_err() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let stats = server.wait_for("the hog cut off", |s| s.output_limit_kicks == 1);
    assert_eq!(stats.closed, 1);
    let mut reader = connect(server.addr);
    reader.write_all(b"get\n").unwrap();
    let mut got = vec![0u8; format!("VALUE {}\n", 1 << 20).len() + (1 << 20) + 4];
    reader.read_exact(&mut got).unwrap();
    assert!(got.ends_with(b"END\n"));
    let _ = server.stop();
    assert_eq!(released.load(Ordering::SeqCst), 1, "released, none leaked");
}
per_backend!(shared_bytes_count_against_the_output_limit);
