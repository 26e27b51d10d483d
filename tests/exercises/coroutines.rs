//! Coroutines. *Exercise:* a greenlet would answer `slow` with
//! `gevent.sleep(0.5)` and then `done`, and the other greenlets would run
//! meanwhile. A handler that calls `thread::sleep` stops every client
//! instead. Answer `slow` half a second later without blocking: remember
//! what is due in a timer, and finish the work in `on_timer`. `fast` is
//! answered at once, even while a `slow` waits.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use selectloop::codec::Lines;
use selectloop::{Config, ConnId, Context, Handler, TimerId};

use crate::util::{connect, read_n, Server};

#[cfg(not(feature = "exercises"))]
#[path = "solutions/coroutines.rs"]
mod answer;
#[cfg(feature = "exercises")]
#[path = "../../exercises/coroutines.rs"]
mod answer;
use answer::*;

#[test]
fn a_waiting_request_does_not_hold_up_another_client() {
    let config = Config::new().codec(Lines::new(64));
    let server = Server::start(config, SleepWithoutBlocking::default());
    let mut slow = connect(server.addr);
    let mut fast = connect(server.addr);

    slow.write_all(b"slow\n").unwrap();
    fast.write_all(b"fast\n").unwrap();
    assert_eq!(read_n(&mut fast, 5), b"fast\n");
    // The fast answer came while the slow one was still waiting.
    slow.set_nonblocking(true).unwrap();
    let mut byte = [0; 1];
    let pending = slow.read(&mut byte).unwrap_err();
    assert_eq!(
        pending.kind(),
        ErrorKind::WouldBlock,
        "slow answered too early"
    );
    slow.set_nonblocking(false).unwrap();
    assert_eq!(read_n(&mut slow, 5), b"done\n");
}
