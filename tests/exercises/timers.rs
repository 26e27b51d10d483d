//! Timers. *Exercise:* close a connection that sends nothing for a while,
//! with a timer per connection: set it on connect, set it afresh on every
//! message, and close the connection when it fires. (The loop does this
//! itself with `Config::idle_timeout`; writing it shows how timers and
//! connections meet.)

use std::collections::HashMap;
use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use selectloop::codec::Lines;
use selectloop::{CloseReason, Config, ConnId, Context, Handler, TimerId};

use crate::util::{connect, read_n, read_to_end, Server};

#[cfg(not(feature = "exercises"))]
#[path = "solutions/timers.rs"]
mod answer;
#[cfg(feature = "exercises")]
#[path = "../../exercises/timers.rs"]
mod answer;
use answer::*;

#[test]
fn a_silent_client_is_closed_and_a_talking_one_is_not() {
    // A second of silence allowed, a line every 100 ms: a busy machine
    // that oversleeps a 100 ms sleep nine times over still passes.
    let silence = Duration::from_secs(1);
    let config = Config::new().codec(Lines::new(64));
    let server = Server::start(config, CloseWhenSilent::new(silence));
    let started = Instant::now();
    let mut silent = connect(server.addr);
    let mut talking = connect(server.addr);

    // Talk every 100 ms for well over the silence allowed.
    let mut last_sent = Instant::now();
    for _ in 0..25 {
        last_sent = Instant::now();
        talking.write_all(b"still here\n").unwrap();
        assert_eq!(read_n(&mut talking, 11), b"still here\n");
        thread::sleep(Duration::from_millis(100));
    }
    assert!(started.elapsed() >= 2 * silence);
    // The silent one was closed meanwhile (end of file, nothing sent) ...
    assert_eq!(read_to_end(&mut silent).unwrap(), b"");
    // ... and the talking one, once silent too, is closed in its turn: no
    // sooner than the silence allowed after its last line, which was
    // sent after `last_sent` (so however late this thread woke up).
    assert_eq!(read_to_end(&mut talking).unwrap(), b"");
    assert!(last_sent.elapsed() >= silence);
    server.wait_for("both closed by the handler", |s| s.closed_by_handler == 2);
}
