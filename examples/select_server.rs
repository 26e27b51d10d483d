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
use std::process::ExitCode;

use selectloop::codec::Chunks;
use selectloop::{Config, ConnId, Context, Handler, Reactor};

// ANCHOR: handler
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
// ANCHOR_END: handler

mod common;

fn main() -> ExitCode {
    common::run("select_server", serve)
}

fn serve() -> io::Result<()> {
    common::init_logging();
    let mut addr = common::default_addr();
    let mut backend = selectloop::backend::BackendKind::default();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(common::invalid)? {
        use lexopt::prelude::*;
        match arg {
            Long("addr") => addr = common::addr(&mut parser)?,
            Long("backend") => backend = common::backend(&mut parser)?,
            Long("help") | Short('h') => common::print_help(USAGE),
            other => return Err(common::invalid(other.unexpected())),
        }
    }

    // Python: `sk = socket.socket(); sk.bind(addr); sk.listen(5)`
    // `Chunks::new(1024)` keeps the seed's framing: one read of at most 1024
    // bytes is one message.
    let config = Config::new().codec(Chunks::new(1024)).backend(backend);
    let mut reactor = Reactor::with_config(config)?;
    let listener = common::listen(&mut reactor, addr)?;
    // Caught before the address is printed: a signal sent as soon as it
    // is read must find the loop listening for it. SIGINT or SIGTERM:
    // stop accepting, answer what was received, close.
    reactor.stop_on_signals()?;
    common::announce(&reactor, listener)?;

    // Python: `while True: rlist, wlist, elist = select.select(inputs, outputs, [], 1)`
    // With RUST_LOG=trace, each turn logs the seed's
    // `print(len(inputs), len(rlist), len(wlist), len(outputs))`.
    // The Python loop only ends when Ctrl-C kills it, mid-answer; here
    // SIGINT or SIGTERM makes `run` shut down: it answers what clients had
    // already sent, closes them, and returns.
    let mut handler = SelectServer;
    reactor.run(&mut handler)
}

const USAGE: &str = "\
usage: select_server [--addr HOST:PORT] [--backend epoll|poll|select|uring]

The Python select() echo server, ported: greets each client with
`Hello client-side` and answers every chunk it reads with `response: ` + it.
  --addr HOST:PORT   where to listen (default 127.0.0.1:8088; port 0 picks one)
  --backend KIND     the multiplexer: epoll (mio, the default), poll, select or uring
  -h, --help         this text
RUST_LOG=trace shows each turn of the loop; warnings are logged by default.
";
