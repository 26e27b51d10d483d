//! Writes and backpressure. *Exercise:* a server that answers `give N`
//! with N bytes, for N up to gigabytes, without queueing them all: queue a
//! piece at a time until the connection's output passes the high
//! watermark, and the next pieces from `on_drained`, once the socket has
//! taken enough. Memory per client then stays near the watermark, however
//! big the answer and however slowly the client reads.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use selectloop::codec::Lines;
use selectloop::{Config, ConnId, Context, Handler};

use crate::util::{connect, Server};

// ANCHOR: solution
const HIGH_WATERMARK: usize = 64 * 1024;
const PIECE: usize = 16 * 1024;

#[derive(Default)]
struct Give {
    /// Bytes still to send, per connection.
    owed: HashMap<ConnId, usize>,
    /// The most output queued for one connection (for the test).
    most_queued: Arc<AtomicUsize>,
}

impl Give {
    /// Queues pieces until the output is past the high watermark or the
    /// answer is all queued. Past it, not at it: `on_drained` comes only
    /// for output that went above the high watermark, and calls this again.
    fn pump(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        let Some(owed) = self.owed.get_mut(&conn) else {
            return;
        };
        while *owed > 0 && cx.pending_output(conn) <= HIGH_WATERMARK {
            let piece = (*owed).min(PIECE);
            // The bytes count down to the end, so the client can check
            // that none was lost or repeated.
            let bytes: Vec<u8> = (0..piece).map(|i| ((*owed - i) % 251) as u8).collect();
            if cx.send(conn, &bytes).is_err() {
                break;
            }
            *owed -= piece;
            self.most_queued
                .fetch_max(cx.pending_output(conn), Ordering::Relaxed);
        }
        if *owed == 0 {
            self.owed.remove(&conn);
        }
    }
}

impl Handler for Give {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, line: &[u8]) {
        let asked = std::str::from_utf8(line)
            .ok()
            .and_then(|l| l.strip_prefix("give "));
        match asked.and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => {
                *self.owed.entry(conn).or_default() += n;
                self.pump(cx, conn);
            }
            None => {
                let _ = cx.send(conn, b"usage: give N\n");
            }
        }
    }

    fn on_drained(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        self.pump(cx, conn);
    }

    fn on_close(&mut self, _: &mut Context<'_>, conn: ConnId, _: &selectloop::CloseReason) {
        self.owed.remove(&conn);
    }
}
// ANCHOR_END: solution

#[test]
fn a_big_answer_is_sent_whole_while_little_of_it_is_queued() {
    let give = Give::default();
    let most_queued = give.most_queued.clone();
    let config = Config::new()
        .codec(Lines::new(64))
        .output_watermarks(16 * 1024, HIGH_WATERMARK);
    let server = Server::start(config, give);
    let mut client = connect(server.addr);
    const ASKED: usize = 32 * 1024 * 1024;
    client
        .write_all(format!("give {ASKED}\n").as_bytes())
        .unwrap();

    let mut received = 0;
    let mut buf = vec![0; 64 * 1024];
    while received < ASKED {
        let n = client.read(&mut buf).unwrap();
        assert!(n > 0, "the server closed after {received} bytes");
        for (i, &byte) in buf[..n].iter().enumerate() {
            let owed = ASKED - received - i;
            assert_eq!(byte, (owed % 251) as u8, "byte {}", received + i);
        }
        received += n;
    }
    let most = most_queued.load(Ordering::Relaxed);
    assert!(
        most <= HIGH_WATERMARK + PIECE,
        "{most} bytes were queued for one client at once"
    );
}
