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

#[cfg(not(feature = "exercises"))]
#[path = "solutions/writes.rs"]
mod answer;
#[cfg(feature = "exercises")]
#[path = "../../exercises/writes.rs"]
mod answer;
use answer::*;

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
