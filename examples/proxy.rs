//! A TCP proxy: every client is connected to `--upstream`, and bytes flow
//! both ways, with backpressure both ways.
//!
//! ```text
//! cargo run --release --example proxy -- --addr 127.0.0.1:7004 --upstream 127.0.0.1:8088
//! ```
//!
//! Each accepted client gets an outbound connection of its own; the handler
//! keeps the pairs. Bytes read on one side are queued on the other. If that
//! side reads slowly, its queue grows past the high watermark, and the proxy
//! pauses reading on the fast side (`pause_reading`): TCP flow control then
//! slows the fast peer down. When the slow side drains below the low
//! watermark (`on_drained`), reading resumes. Memory stays bounded by the
//! watermarks, whatever the speeds of the two peers.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;

use selectloop::codec::Chunks;
use selectloop::{CloseReason, Config, ConnId, Context, Handler, Origin, Reactor};

mod common;

/// Past this much queued for one side, the other side stops being read.
const HIGH: usize = 256 * 1024;

struct Proxy {
    upstream: SocketAddr,
    /// Each connection's partner, both ways.
    peer: HashMap<ConnId, ConnId>,
}

impl Handler for Proxy {
    fn on_connect(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        if cx.origin(conn) == Some(Origin::Outbound) {
            return; // our own upstream connection completed
        }
        match cx.connect(self.upstream) {
            Ok(up) => {
                self.peer.insert(conn, up);
                self.peer.insert(up, conn);
            }
            Err(e) => {
                log::warn!("{conn}: cannot connect to upstream {}: {e}", self.upstream);
                cx.close_now(conn);
            }
        }
    }

    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, bytes: &[u8]) {
        let Some(&other) = self.peer.get(&conn) else {
            return;
        };
        if cx.send(other, bytes).is_err() {
            cx.close_now(conn);
            return;
        }
        if cx.pending_output(other) > HIGH {
            // The other side is slower: stop reading this one until it drains.
            cx.pause_reading(conn);
        }
    }

    fn on_drained(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        if let Some(&other) = self.peer.get(&conn) {
            cx.resume_reading(other);
        }
    }

    fn on_close(&mut self, cx: &mut Context<'_>, conn: ConnId, reason: &CloseReason) {
        if let CloseReason::ConnectFailed(e) = reason {
            // The client is closed below: say why, or it sees a bare close.
            log::warn!(
                "cannot reach upstream {}: {e}; closing its client",
                self.upstream
            );
        }
        if let Some(other) = self.peer.remove(&conn) {
            self.peer.remove(&other);
            // Deliver what is still queued for the partner, then close it.
            cx.close(other);
        }
    }
}

const USAGE: &str = "\
usage: proxy --upstream HOST:PORT [--addr HOST:PORT] [--backend epoll|poll|select|uring]

Connects each client to the upstream server and copies bytes both ways,
with backpressure both ways.
  --upstream HOST:PORT   the server to forward to (required)
  --addr HOST:PORT       where to listen (default 127.0.0.1:8088; port 0 picks one)
  --backend NAME         epoll (default), poll, select or uring (io_uring; epoll where it is missing)
  -h, --help             this text
";

fn main() -> ExitCode {
    common::run("proxy", serve)
}

fn serve() -> io::Result<()> {
    common::init_logging();
    let mut addr = common::default_addr();
    let mut backend = selectloop::backend::BackendKind::default();
    let mut upstream = None;
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(common::invalid)? {
        use lexopt::prelude::*;
        match arg {
            Long("addr") => addr = common::addr(&mut parser)?,
            Long("backend") => backend = common::backend(&mut parser)?,
            Long("upstream") => upstream = Some(common::addr(&mut parser)?),
            Long("help") | Short('h') => common::print_help(USAGE),
            other => return Err(common::invalid(other.unexpected())),
        }
    }
    let upstream = upstream.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "--upstream HOST:PORT is required",
        )
    })?;
    let config = Config::new()
        .backend(backend)
        .codec(Chunks::new(64 * 1024))
        .output_watermarks(64 * 1024, HIGH);
    let mut reactor = Reactor::with_config(config)?;
    let listener = common::listen(&mut reactor, addr)?;
    // Caught before the address is printed: a signal sent as soon as it
    // is read must find the loop listening for it. SIGINT or SIGTERM:
    // stop accepting, answer what was received, close.
    reactor.stop_on_signals()?;
    common::announce(&reactor, listener)?;
    let mut proxy = Proxy {
        upstream,
        peer: HashMap::new(),
    };
    reactor.run(&mut proxy)
}
