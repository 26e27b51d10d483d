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

// ANCHOR: solution
struct CloseWhenSilent {
    silence: Duration,
    timer_of: HashMap<ConnId, TimerId>,
    conn_of: HashMap<TimerId, ConnId>,
}

impl CloseWhenSilent {
    fn new(silence: Duration) -> CloseWhenSilent {
        CloseWhenSilent {
            silence,
            timer_of: HashMap::new(),
            conn_of: HashMap::new(),
        }
    }

    /// Starts `conn`'s countdown again, cancelling the one running.
    fn rearm(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        if let Some(old) = self.timer_of.remove(&conn) {
            cx.cancel_timer(old);
            self.conn_of.remove(&old);
        }
        let timer = cx.set_timer(self.silence);
        self.timer_of.insert(conn, timer);
        self.conn_of.insert(timer, conn);
    }
}

impl Handler for CloseWhenSilent {
    fn on_connect(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        self.rearm(cx, conn);
    }

    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, line: &[u8]) {
        self.rearm(cx, conn);
        let _ = cx.send_frame(conn, line);
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, timer: TimerId) {
        if let Some(conn) = self.conn_of.remove(&timer) {
            self.timer_of.remove(&conn);
            cx.close(conn);
        }
    }

    fn on_close(&mut self, cx: &mut Context<'_>, conn: ConnId, _: &CloseReason) {
        // A connection that left by itself: its timer has nothing to do.
        if let Some(timer) = self.timer_of.remove(&conn) {
            cx.cancel_timer(timer);
            self.conn_of.remove(&timer);
        }
    }
}
// ANCHOR_END: solution

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
