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
//! answers the right connection.
//!
//! Answers keep the order of the requests on each connection, as a client
//! of a request/response protocol expects: `hash a`, `hash b`, `ping` sent
//! together are answered hash, hash, pong, though the pong is ready first.
//! Each request takes a ticket, and an answer ready before its turn waits
//! in the connection's own state (`Context::set_state`) until the answers
//! before it have gone; past 1,024 held answers the connection's reading
//! pauses until they are out. Another client's ping is not held up.

use std::collections::BTreeMap;
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

const UNKNOWN: &[u8] = b"error: unknown command, expected ping or hash TEXT";

// ANCHOR: handler
/// Answers held for their turn, at most, before the connection's reading
/// pauses: a client that pipelines pings behind a hash cannot make the
/// server hold answers without end.
const MAX_EARLY: usize = 1024;

/// The answers owed to one connection, in the order of its requests.
#[derive(Default)]
struct Owed {
    /// The ticket the next request gets.
    next_ticket: u64,
    /// The ticket whose answer goes out next.
    next_out: u64,
    /// Answers that came before their turn, by ticket.
    early: BTreeMap<u64, Vec<u8>>,
    /// Reading is paused until the early answers are out.
    paused: bool,
}

/// The ticket for `conn`'s next request.
fn take_ticket(cx: &mut Context<'_>, conn: ConnId) -> u64 {
    cx.with_state(conn, |owed: &mut Owed, _| {
        owed.next_ticket += 1;
        owed.next_ticket - 1
    })
    .unwrap_or(0)
}

/// Sends `answer` if its turn has come, then every answer it was holding
/// up; else keeps it until then.
fn answer(cx: &mut Context<'_>, conn: ConnId, ticket: u64, answer: &[u8]) {
    cx.with_state(conn, |owed: &mut Owed, cx| {
        if ticket != owed.next_out {
            owed.early.insert(ticket, answer.to_vec());
            if owed.early.len() >= MAX_EARLY && !owed.paused {
                owed.paused = cx.pause_reading(conn);
            }
            return;
        }
        let _ = cx.send_frame(conn, answer);
        owed.next_out += 1;
        while let Some(due) = owed.early.remove(&owed.next_out) {
            let _ = cx.send_frame(conn, &due);
            owed.next_out += 1;
        }
        if owed.paused && owed.early.is_empty() {
            owed.paused = false;
            cx.resume_reading(conn);
        }
    });
}

impl Handler for Service {
    fn on_connect(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        cx.set_state(conn, Owed::default());
    }

    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, line: &[u8]) {
        let ticket = take_ticket(cx, conn);
        if line == b"ping" {
            return answer(cx, conn, ticket, b"pong");
        }
        let Some(text) = line.strip_prefix(b"hash ") else {
            return answer(cx, conn, ticket, UNKNOWN);
        };
        if !self.use_pool {
            // Everyone else waits while this runs.
            let hash = format!("hash {:016x}", slow_hash(text));
            return answer(cx, conn, ticket, hash.as_bytes());
        }
        let text = text.to_vec();
        let submitted = cx.submit(
            conn,
            move || slow_hash(&text), // on a worker thread
            move |cx, conn, hash| {
                // back on the loop thread, for the connection that asked
                let hash = format!("hash {hash:016x}");
                answer(cx, conn, ticket, hash.as_bytes());
            },
        );
        if let Err(e) = submitted {
            answer(cx, conn, ticket, format!("busy: {e}").as_bytes());
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
            Long("addr") => addr = common::addr(&mut parser)?,
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
