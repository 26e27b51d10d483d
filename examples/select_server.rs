//! The select() echo server of the seed notes, ported line by line.
//!
//! ```text
//! cargo run --release --example select_server                  # 127.0.0.1:8088
//! cargo run --release --example select_server -- --addr 127.0.0.1:0
//! RUST_LOG=trace cargo run --example select_server             # the per-turn line
//! ```
//!
//! Protocol, as in the Python original: on connect the server sends
//! `Hello client-side`; every chunk a client sends (at most 1024 bytes, one
//! `recv(1024)`) is answered with `response: ` + the chunk.
//!
//! The Python program keeps three structures by hand and walks them after every
//! `select()`. Here the crate keeps them, and this file only says what to do
//! with a client and with a message:
//!
//! | Python                                   | here                                   |
//! |------------------------------------------|----------------------------------------|
//! | `sk.bind(addr); sk.listen(5)`            | `reactor.listen(addr)` (backlog 1024)  |
//! | `inputs = [sk]`                          | the reactor's registered sockets       |
//! | `outputs = []`                           | its writable set                       |
//! | `message = {}`                           | each connection's inbound queue        |
//! | `select.select(inputs, outputs, [], 1)`  | `reactor.run(...)`: one poll per turn  |
//! | `conn.sendall(b"Hello client-side")`     | `on_connect`                           |
//! | `msg = message[w].pop(); w.sendall(...)` | `on_message`, oldest message first     |

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use selectloop::codec::Chunks;
use selectloop::{Config, ConnId, Context, Handler, Reactor};

/// The server's whole behaviour: what to do with a new client and with a message.
struct SelectServer;

impl Handler for SelectServer {
    // Python: `conn, peer = r.accept(); inputs.append(conn); message[conn] = [];
    //          conn.sendall(bytes("Hello client-side", encoding="utf-8"))`
    // The reactor has already accepted and registered the connection; we only
    // queue the greeting. It is written at the end of this turn, without ever
    // blocking the loop the way `sendall` can.
    fn on_connect(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        let _ = cx.send(conn, b"Hello client-side");
    }

    // Python: `msg = message[w].pop(); w.sendall(b"response: " + msg)`
    // Called once per chunk, in the order the chunks arrived (`pop()` took the
    // newest). The two parts are queued back to back, no joined copy made.
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, chunk: &[u8]) {
        let _ = cx.send_parts(conn, &[b"response: ", chunk]);
    }

    // Python: `inputs.remove(r); del message[r]` (and the socket was never
    // closed). The reactor closes and forgets it; nothing is left to do here.
}

mod common;

fn main() -> io::Result<()> {
    env_logger::init();
    let addr = parse_addr()?;

    // Python: `sk = socket.socket(); sk.bind(addr); sk.listen(5)`
    // `Chunks::new(1024)` keeps the seed's framing: one read of at most 1024
    // bytes is one message.
    let mut reactor = Reactor::with_config(Config::new().codec(Chunks::new(1024)))?;
    let listener = reactor.listen(addr)?;
    let bound = reactor
        .local_addr(listener)
        .ok_or_else(|| io::Error::other("listener has no address"))?;
    println!("listening on {bound}");

    // Python: `while True: rlist, wlist, elist = select.select(inputs, outputs, [], 1)`
    // With RUST_LOG=trace, each turn logs the seed's
    // `print(len(inputs), len(rlist), len(wlist), len(outputs))`.
    // The Python loop only ends when Ctrl-C kills it, mid-answer; here
    // SIGINT or SIGTERM ends `run`, and `shutdown` answers what clients had
    // already sent before closing them.
    let mut handler = common::StopOnSignal::new(&mut reactor, SelectServer)?;
    reactor.run(&mut handler)?;
    reactor.shutdown(&mut handler, Duration::from_millis(500))
}

/// `--addr HOST:PORT`, default 127.0.0.1:8088.
fn parse_addr() -> io::Result<SocketAddr> {
    use lexopt::prelude::*;
    let mut addr: SocketAddr = ([127, 0, 0, 1], 8088).into();
    let mut parser = lexopt::Parser::from_env();
    let invalid = |e: lexopt::Error| io::Error::new(io::ErrorKind::InvalidInput, e.to_string());
    while let Some(arg) = parser.next().map_err(invalid)? {
        match arg {
            Long("addr") => addr = parser.value().map_err(invalid)?.parse().map_err(invalid)?,
            Long("help") | Short('h') => {
                println!("usage: select_server [--addr HOST:PORT]   (default 127.0.0.1:8088)");
                std::process::exit(0);
            }
            other => return Err(invalid(other.unexpected())),
        }
    }
    Ok(addr)
}
