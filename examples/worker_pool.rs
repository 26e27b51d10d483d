//! Slow requests on a worker pool, so that quick ones stay quick.
//!
//! ```text
//! cargo run --release --example worker_pool -- --addr 127.0.0.1:7002
//! cargo run --release --example worker_pool -- --addr 127.0.0.1:7003 --no-pool
//! ```
//!
//! Protocol (lines, each answer one line):
//!
//! | request | answer |
//! |---|---|
//! | `ping` | `pong`, at once |
//! | `hash TEXT` | `hash HEX`, after about 50 ms of CPU (a deliberately slow hash) |
//! | anything else | `error: unknown command, expected ping or hash TEXT` |
//! | a hash while the pool's queue is full | `busy: ...` |
//!
//! With `--no-pool`, the hash runs on the loop thread, and every other client
//! waits behind it: a ping sent during a hash is answered after it. This is
//! the seed notes' lesson on threads, made measurable: one thread doing
//! everything serialises everything. With the pool, the loop hands the hash
//! to a worker thread and goes on; the result comes back to the loop, which
//! answers the right connection, in request order (`submit_ordered`).

use std::io;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use selectloop::codec::Lines;
use selectloop::{Config, ConnId, Context, Handler, Reactor};

mod common;

/// About 50 ms of CPU on a typical core: rounds of FNV-1a over the text.
fn slow_hash(text: &[u8]) -> u64 {
    let started = Instant::now();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    while started.elapsed() < Duration::from_millis(50) {
        for _ in 0..10_000 {
            for &b in text {
                hash ^= u64::from(b);
                hash = hash.wrapping_mul(0x100_0000_01b3);
            }
        }
    }
    hash
}

struct Service {
    use_pool: bool,
}

// ANCHOR: handler
impl Handler for Service {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, line: &[u8]) {
        if line == b"ping" {
            let _ = cx.send_frame(conn, b"pong");
            return;
        }
        let Some(text) = line.strip_prefix(b"hash ") else {
            let _ = cx.send_frame(conn, b"error: unknown command, expected ping or hash TEXT");
            return;
        };
        if !self.use_pool {
            // Everyone else waits while this runs.
            let hash = slow_hash(text);
            let _ = cx.send_frame(conn, format!("hash {hash:016x}").as_bytes());
            return;
        }
        let text = text.to_vec();
        let submitted = cx.submit_ordered(
            conn,
            move || slow_hash(&text), // on a worker thread
            |cx, conn, hash| {
                // back on the loop thread, for the connection that asked
                let _ = cx.send_frame(conn, format!("hash {hash:016x}").as_bytes());
            },
        );
        if let Err(e) = submitted {
            let _ = cx.send_frame(conn, format!("busy: {e}").as_bytes());
        }
    }
}
// ANCHOR_END: handler

const USAGE: &str = "\
usage: worker_pool [--addr HOST:PORT] [--no-pool] [--backend epoll|poll|select|uring]

Answers lines: `ping` with `pong`, `hash TEXT` with `hash HEX` after about
50 ms of CPU on a worker thread; anything else with an error line.
  --addr HOST:PORT   where to listen (default 127.0.0.1:8088; port 0 picks one)
  --no-pool          hash on the loop thread instead: every client waits
  --backend NAME     epoll (default), poll, select or uring (io_uring; epoll where it is missing)
  -h, --help         this text
";

fn main() -> ExitCode {
    common::run("worker_pool", serve)
}

fn serve() -> io::Result<()> {
    common::init_logging();
    let mut addr = common::default_addr();
    let mut backend = selectloop::backend::BackendKind::default();
    let mut use_pool = true;
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(common::invalid)? {
        use lexopt::prelude::*;
        match arg {
            Long("addr") => addr = common::value(&mut parser)?,
            Long("backend") => backend = common::backend(&mut parser)?,
            Long("no-pool") => use_pool = false,
            Long("help") | Short('h') => common::print_help(USAGE),
            other => return Err(common::invalid(other.unexpected())),
        }
    }
    let mut reactor = Reactor::with_config(Config::new().backend(backend).codec(Lines::new(4096)))?;
    let listener = common::listen(&mut reactor, addr)?;
    // Caught before the address is printed: a signal sent as soon as it
    // is read must find the loop listening for it. SIGINT or SIGTERM:
    // stop accepting, answer what was received, close.
    reactor.stop_on_signals()?;
    common::announce(&reactor, listener)?;
    let mut handler = Service { use_pool };
    reactor.run(&mut handler)
}
