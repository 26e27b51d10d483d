//! A plain echo server: every message comes back as it was sent, framed the
//! same way. No greeting, no prefix: the server the benchmarks load.
//!
//! ```text
//! cargo run --release --example echo_server -- --addr 127.0.0.1:0 --codec lines
//! ```
//!
//! `--codec chunks` echoes whatever each read returned (bytes in, same bytes
//! out), `lines` echoes each line ended by `\n` (a `\r\n` ending, as telnet
//! sends, is read as the line ending and answered with a plain `\n`: the
//! line comes back as sent, its ending normalised), `length` echoes frames
//! with a 4-byte big-endian length header. `--max BYTES` sets the longest message
//! (default 65536); a longer one closes only the connection that sent it.
//! The limits of `selectloop::Config` have flags too (`--help`).
//!
//! `--threads N` runs N reactors, one per thread, on the same address
//! (`selectloop::Group`); `--balance reuseport` (the default on Linux) gives
//! each its own listening socket with `SO_REUSEPORT`, `--balance acceptor`
//! has one thread accept and hand connections round-robin; `--pin` pins
//! loop `i` to CPU `i`.
//!
//! SIGINT or SIGTERM stops it gracefully: no new connections, answers to
//! what was received are written, then it exits with status 0.

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use selectloop::codec::{Chunks, Codec, LengthPrefixed, Lines};
use selectloop::{Balance, Config, ConnId, Context, EmfilePolicy, Group, Handler, Reactor};

mod common;

/// Echoes each message framed with the codec it came in.
struct Echo;

impl Handler for Echo {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
        let _ = cx.send_frame(conn, msg);
    }
}

const USAGE: &str = "\
usage: echo_server [--addr HOST:PORT] [--codec chunks|lines|length] [--max BYTES]
                   [--max-connections N] [--fd-reserve N]
                   [--idle-timeout-ms MS] [--message-deadline-ms MS]
                   [--emfile-policy pause|shed]
                   [--backend epoll|poll|select|uring] [--threads N]
                   [--balance reuseport|acceptor] [--pin]

Echoes every message as it came, framed the same way.
  --addr HOST:PORT         where to listen (default 127.0.0.1:8088; port 0 picks one)
  --codec NAME             chunks: whatever each read returned (the default);
                           lines: each line ended by \\n; length: frames with a
                           4-byte big-endian length header
  --max BYTES              the longest message (default 65536); a longer one
                           closes the connection that sent it
  --max-connections N      connections served at once (default 10000); more
                           are accepted and closed at once
  --fd-reserve N           descriptors kept free below the process's limit
                           (default 32)
  --idle-timeout-ms MS     close a connection on which no byte moved for MS
                           (default: never)
  --message-deadline-ms MS close a connection whose message, once begun, is not
                           whole within MS (default: never)
  --emfile-policy NAME     out of descriptors: pause accepting (the default) or
                           shed the backlog with a spare descriptor
  --backend NAME           epoll (default), poll, select or uring (io_uring;
                           epoll where it is missing)
  --threads N              N loops, one per thread, on one address (default 1)
  --balance NAME           with --threads: reuseport (each loop its own socket,
                           the default on Linux) or acceptor (one thread accepts
                           and hands connections round-robin)
  --pin                    with --threads: pin loop i to CPU i
  -h, --help               this text
";

fn main() -> ExitCode {
    common::run("echo_server", serve)
}

fn serve() -> io::Result<()> {
    common::init_logging();
    let Options {
        addr,
        config,
        threads,
        balance,
        pin,
    } = parse_args()?;
    // ANCHOR: group
    if threads > 1 {
        let group = Group::builder(config)
            .threads(threads)
            .balance(balance)
            .pin_to_cores(pin)
            .spawn(addr, |_| Echo)
            .map_err(common::group_failed(threads, addr))?;
        return common::run_group(group, Duration::from_millis(500));
    }
    // ANCHOR_END: group
    let mut reactor = Reactor::with_config(config)?;
    let listener = common::listen(&mut reactor, addr)?;
    // ANCHOR: signals
    // Caught before the address is printed: a signal sent as soon as it
    // is read must find the loop listening for it. SIGINT or SIGTERM:
    // stop accepting, answer what was received, close, and return.
    reactor.stop_on_signals()?;
    common::announce(&reactor, listener)?;
    reactor.run(&mut Echo)
    // ANCHOR_END: signals
}

/// What the command line asks for.
struct Options {
    addr: SocketAddr,
    config: Config,
    threads: usize,
    balance: Balance,
    /// Pin loop `i` to CPU `i`.
    pin: bool,
}

fn parse_args() -> io::Result<Options> {
    use lexopt::prelude::*;
    let mut addr: SocketAddr = ([127, 0, 0, 1], 8088).into();
    let mut codec = String::from("chunks");
    let mut max = 64 * 1024;
    let mut config = Config::new();
    let mut threads = 1;
    let mut pin = false;
    let mut balance = Balance::default();
    let mut parser = lexopt::Parser::from_env();
    let invalid = |e: lexopt::Error| io::Error::new(io::ErrorKind::InvalidInput, e.to_string());
    while let Some(arg) = parser.next().map_err(invalid)? {
        match arg {
            Long("addr") => addr = common::addr(&mut parser)?,
            Long("codec") => codec = parser.value().map_err(invalid)?.string().map_err(invalid)?,
            Long("max") => max = parser.value().map_err(invalid)?.parse().map_err(invalid)?,
            Long("max-connections") => {
                let n = parser.value().map_err(invalid)?.parse().map_err(invalid)?;
                config = config.max_connections(n);
            }
            Long("fd-reserve") => {
                let n = parser.value().map_err(invalid)?.parse().map_err(invalid)?;
                config = config.fd_reserve(n);
            }
            Long("idle-timeout-ms") => {
                let ms = parser.value().map_err(invalid)?.parse().map_err(invalid)?;
                config = config.idle_timeout(Duration::from_millis(ms));
            }
            Long("message-deadline-ms") => {
                let ms = parser.value().map_err(invalid)?.parse().map_err(invalid)?;
                config = config.message_deadline(Duration::from_millis(ms));
            }
            Long("emfile-policy") => {
                let policy = parser.value().map_err(invalid)?.string().map_err(invalid)?;
                config = config.emfile_policy(match policy.as_str() {
                    "pause" => EmfilePolicy::Pause,
                    "shed" => EmfilePolicy::Shed,
                    _ => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("--emfile-policy {policy:?}: expected pause or shed"),
                        ))
                    }
                });
            }
            Long("backend") => config = config.backend(common::backend(&mut parser)?),
            Long("threads") => threads = common::threads(&mut parser)?,
            Long("pin") => pin = true,
            Long("balance") => balance = common::balance(&mut parser)?,
            Long("help") | Short('h') => common::print_help(USAGE),
            other => return Err(invalid(other.unexpected())),
        }
    }
    let codec = match codec.as_str() {
        "chunks" => Codec::from(Chunks::new(max)),
        "lines" => Codec::from(Lines::new(max)),
        "length" => Codec::from(LengthPrefixed::new(max)),
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown codec {other:?}: expected chunks, lines or length"),
            ))
        }
    };
    Ok(Options {
        addr,
        config: config.codec(codec),
        threads,
        balance,
        pin,
    })
}
