//! A server that pushes to its clients: every `--every-ms` (default 1000) it
//! sends `tick N` to everyone connected. Another thread stops it through a
//! handle after `--seconds` (if given); SIGINT or SIGTERM stop it too.
//!
//! ```text
//! cargo run --example ticker -- --addr 127.0.0.1:7001 --every-ms 200 --seconds 5
//! nc 127.0.0.1 7001
//! ```
//!
//! The timer replaces the Python server's `select(..., 1)` wake-up: the loop
//! sleeps exactly until the next tick, and a thread that wants the loop to
//! stop asks it through the handle (a channel and a wake-up), never by
//! touching its state.

use std::io;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use selectloop::codec::Lines;
use selectloop::{CloseReason, Config, ConnId, Context, Handler, Reactor, TimerId};

mod common;

struct Ticker {
    every: Duration,
    clients: Vec<ConnId>,
    ticks: u64,
    timer: Option<TimerId>,
}

// ANCHOR: timer
impl Handler for Ticker {
    fn on_connect(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        self.clients.push(conn);
        if self.timer.is_none() {
            self.timer = Some(cx.set_periodic(self.every));
        }
    }

    fn on_message(&mut self, _cx: &mut Context<'_>, _conn: ConnId, _msg: &[u8]) {}

    fn on_close(&mut self, cx: &mut Context<'_>, conn: ConnId, _reason: &CloseReason) {
        self.clients.retain(|&c| c != conn);
        if self.clients.is_empty() {
            // Nobody listens: stop waking up for nothing.
            if let Some(timer) = self.timer.take() {
                cx.cancel_timer(timer);
            }
        }
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, _timer: TimerId) {
        self.ticks += 1;
        let line = format!("tick {}", self.ticks);
        for &client in &self.clients {
            let _ = cx.send_frame(client, line.as_bytes());
        }
    }
}
// ANCHOR_END: timer

const USAGE: &str = "\
usage: ticker [--addr HOST:PORT] [--every-ms MS] [--seconds S] [--backend epoll|poll|select|uring]

Sends `tick N` to every client connected, every MS milliseconds.
  --addr HOST:PORT   where to listen (default 127.0.0.1:8088; port 0 picks one)
  --every-ms MS      the period, at least 1 (default 1000)
  --seconds S        stop gracefully after S seconds (default: run until a signal)
  --backend NAME     epoll (default), poll, select or uring (io_uring; epoll where it is missing)
  -h, --help         this text
";

fn main() -> ExitCode {
    common::run("ticker", serve)
}

fn serve() -> io::Result<()> {
    common::init_logging();
    let mut addr = common::default_addr();
    let mut backend = selectloop::backend::BackendKind::default();
    let mut every = Duration::from_secs(1);
    let mut seconds = None;
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(common::invalid)? {
        use lexopt::prelude::*;
        match arg {
            Long("addr") => addr = common::addr(&mut parser)?,
            Long("backend") => backend = common::backend(&mut parser)?,
            Long("every-ms") => every = Duration::from_millis(common::value(&mut parser)?),
            Long("seconds") => seconds = Some(common::value::<u64>(&mut parser)?),
            Long("help") | Short('h') => common::print_help(USAGE),
            other => return Err(common::invalid(other.unexpected())),
        }
    }
    if every.is_zero() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--every-ms 0: a period of zero would tick without end; give 1 or more",
        ));
    }
    let config = Config::new()
        .backend(backend)
        .codec(Lines::new(1024))
        .max_output(1024 * 1024);
    let mut reactor = Reactor::with_config(config)?;
    let listener = common::listen(&mut reactor, addr)?;
    // Caught before the address is printed: a signal sent as soon as it
    // is read must find the loop listening for it. SIGINT or SIGTERM:
    // stop accepting, answer what was received, close.
    reactor.stop_on_signals()?;
    common::announce(&reactor, listener)?;
    if let Some(seconds) = seconds {
        // Another thread decides when to stop, and tells the loop.
        let handle = reactor.handle()?;
        thread::spawn(move || {
            thread::sleep(Duration::from_secs(seconds));
            let _ = handle.shutdown(Duration::from_millis(500));
        });
    }
    let mut ticker = Ticker {
        every,
        clients: Vec::new(),
        ticks: 0,
        timer: None,
    };
    reactor.run(&mut ticker)
}
