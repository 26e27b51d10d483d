//! A stale token, shown: a message meant for a connection that has closed
//! must never reach the newer connection that reuses its slot.
//!
//! ```text
//! cargo run --example stale_token
//! ```
//!
//! The loop keeps connections in a table (a slab) and names each one to the
//! kernel by its slot. When a connection closes, its slot is reused by the
//! next one. Anything still holding the old name (an event polled in the
//! same batch, a worker's result, another thread's `Handle::send`) would,
//! with the slot alone, reach the new connection: a client would read
//! another client's answer. selectloop's `ConnId` (and the token under
//! which the socket is registered) carries a generation as well as the
//! slot, so the old name stays the old connection's, closed.
//!
//! This program connects client A, remembers its id, lets it leave, then
//! connects client B into the same slot and sends to A's old id.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use selectloop::{ConnId, Context, Handler, Reactor};

mod common;

/// Remembers the connections in the order they came.
#[derive(Default)]
struct Arrivals(Vec<ConnId>);

impl Handler for Arrivals {
    fn on_connect(&mut self, _cx: &mut Context<'_>, conn: ConnId) {
        self.0.push(conn);
    }
    fn on_message(&mut self, _cx: &mut Context<'_>, _conn: ConnId, _msg: &[u8]) {}
}

const USAGE: &str = "\
usage: stale_token

Shows a message meant for a closed connection being refused by its
generation rather than reaching the new connection that reuses its slot.
Takes no arguments.
  -h, --help   this text
";

fn main() -> io::Result<()> {
    common::no_arguments("stale_token", USAGE);
    let mut reactor = Reactor::new()?;
    let listener = reactor.listen("127.0.0.1:0")?;
    let addr = reactor.local_addr(listener).expect("a TCP listener");
    let mut arrivals = Arrivals::default();
    let turn = |reactor: &mut Reactor, arrivals: &mut Arrivals| {
        reactor.run_once(arrivals, Some(Duration::from_millis(20)))
    };

    let a = TcpStream::connect(addr)?;
    while arrivals.0.is_empty() {
        turn(&mut reactor, &mut arrivals)?;
    }
    let old = arrivals.0[0];
    drop(a); // A leaves; the loop closes its connection and frees the slot
    while reactor.connection_count() > 0 {
        turn(&mut reactor, &mut arrivals)?;
    }
    turn(&mut reactor, &mut arrivals)?; // the slot is freed at a turn's end

    let mut b = TcpStream::connect(addr)?;
    while arrivals.0.len() < 2 {
        turn(&mut reactor, &mut arrivals)?;
    }
    let new = arrivals.0[1];
    println!("client A was {old}; client B is {new}, in the slot A left");

    // ANCHOR: stale
    // Something still holds A's id and sends to it.
    let sent = reactor.context().send(old, b"for A's eyes only\n");
    println!("send to {old}: {sent:?}");
    // ANCHOR_END: stale
    turn(&mut reactor, &mut arrivals)?;
    b.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut got = [0u8; 64];
    match b.read(&mut got) {
        Ok(n) => println!(
            "client B read {n} bytes: {:?}",
            String::from_utf8_lossy(&got[..n])
        ),
        Err(_) => println!("client B read nothing: the old id did not reach it"),
    }
    let _ = b.write_all(b"bye\n");
    Ok(())
}
