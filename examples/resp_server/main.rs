//! A Redis-protocol key-value server: RESP2 requests framed by a decoder of
//! the crate's `Decoder` trait, answered from one loop, driven by the real
//! `redis-cli` and `redis-benchmark`.
//!
//! ```text
//! cargo run --release --example resp_server -- --addr 127.0.0.1:6380
//! redis-cli -p 6380 set greeting hello
//! redis-benchmark -p 6380 -t set,get -c 50 -P 16 -d 64 -q
//! ```
//!
//! Commands, each answered as Redis 7.0 answers it, errors included
//! (tests/it/resp_vs_redis.rs sends the same commands to redis-server):
//! GET, SET (NX, XX, GET, EX, PX, EXAT, PXAT, KEEPTTL), INCR, DECR, INCRBY,
//! DECRBY, MSET, MGET; DEL, EXISTS, EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT
//! (NX, XX, GT, LT), TTL, PTTL, PERSIST, DBSIZE, FLUSHALL; LPUSH, RPUSH,
//! LPOP, RPOP (with a count), LRANGE, LLEN; SADD, SPOP (with a count),
//! SCARD; HSET, HGET; ZADD (NX, XX, GT, LT, CH, INCR), ZPOPMIN; PING, ECHO,
//! and what clients send as they start: HELLO (RESP2 only: `HELLO 3` gets
//! `-NOPROTO`), CLIENT ID, GETNAME, SETNAME, COMMAND (COUNT, INFO, LIST,
//! DOCS), CONFIG GET (`save` and `appendonly`). INFO answers the server,
//! clients, memory, stats and keyspace sections in Redis's layout (its
//! figures are this server's own, so it is not compared byte for byte). A request that breaks the
//! protocol is answered `-ERR Protocol error: ...` after the requests
//! before it, and its connection closed.
//!
//! Keys with a time to live expire lazily, when touched, and by a sweep
//! every 100 ms (Redis's `hz 10`).

use std::collections::HashMap;
use std::io;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use selectloop::backend::BackendKind;
use selectloop::codec::{DecodeError, MAX_MESSAGE};
use selectloop::{CloseReason, Config, ConnId, Context, Handler, Reactor, TimerId};

mod commands;
#[path = "../common/mod.rs"]
mod common;
mod db;
mod inline;
mod resp;

use resp::{Limits, Request, RespDecoder};

const USAGE: &str = "\
usage: resp_server [--addr HOST:PORT] [--max-bulk BYTES] [--max-multibulk N] [--timeout-s S]
                   [--command-timeout-s S] [--backend epoll|poll|select|uring]

A Redis-protocol (RESP2) key-value server on one selectloop reactor. It
answers, as Redis 7.0 does:
  strings   GET SET (NX XX GET EX PX EXAT PXAT KEEPTTL) INCR DECR INCRBY
            DECRBY MSET MGET
  keys      DEL EXISTS EXPIRE PEXPIRE EXPIREAT PEXPIREAT (NX XX GT LT) TTL
            PTTL PERSIST DBSIZE FLUSHALL
  lists     LPUSH RPUSH LPOP RPOP LRANGE LLEN
  sets      SADD SPOP SCARD
  hashes    HSET HGET
  zsets     ZADD (NX XX GT LT CH INCR) ZPOPMIN
  server    PING ECHO HELLO CLIENT (ID GETNAME SETNAME) COMMAND (COUNT INFO
            LIST DOCS) CONFIG GET INFO (server clients memory stats keyspace)

  --addr HOST:PORT     where to listen (default 127.0.0.1:8088; port 0 picks one)
  --max-bulk BYTES     longest argument (default 536870912, Redis's proto-max-bulk-len)
  --max-multibulk N    most arguments in one request (default 2147483647, Redis's)
  --timeout-s S        close a client on which no byte moved, either way, for S
                       seconds (Redis's `timeout`; default 0, never)
  --command-timeout-s S  close a client whose command, once begun, is not whole
                       within S seconds: a slowloris bound, which Redis lacks
                       (default 0, never)
  --backend NAME       epoll (default), poll, select or uring (io_uring; epoll where it is missing)
  -h, --help           this text
";

/// Keys whose deadlines the sweep looks at per tick at most.
const SWEEP_BUDGET: usize = 1000;

struct RespServer {
    db: db::Db,
    /// Reused for every reply.
    out: Vec<u8>,
    /// Each connection's id and name (CLIENT ID, CLIENT SETNAME).
    clients: HashMap<ConnId, commands::Client>,
    /// The id the next client gets.
    next_client_id: u64,
    /// What INFO reports of the server.
    info: commands::ServerInfo,
}

/// Unix time in milliseconds, as Redis's `mstime()`: deadlines are kept in
/// it, so that EXPIREAT and PXAT mean what they say.
fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

impl Handler<Request> for RespServer {
    fn on_connect(&mut self, _cx: &mut Context<'_>, conn: ConnId) {
        self.next_client_id += 1;
        self.info.total_connections += 1;
        let client = commands::Client {
            id: self.next_client_id,
            name: None,
        };
        self.clients.insert(conn, client);
    }

    fn on_close(&mut self, _cx: &mut Context<'_>, conn: ConnId, _reason: &CloseReason) {
        self.clients.remove(&conn);
    }

    fn on_item(&mut self, cx: &mut Context<'_>, conn: ConnId, args: Request, request: &[u8]) {
        let mut rq = commands::Request {
            bytes: request,
            args: &args,
            out: &mut self.out,
            now_ms: unix_ms(),
            clients: &mut self.clients,
            conn,
            server: &self.info,
        };
        commands::run(&mut self.db, &mut rq);
        self.info.total_commands += 1;
        if !self.out.is_empty() {
            let _ = cx.send(conn, &self.out);
            self.out.clear();
        }
    }

    fn on_decode_error(&mut self, cx: &mut Context<'_>, conn: ConnId, error: &DecodeError) {
        let why = match error {
            DecodeError::Invalid(why) => why.to_string(),
            other => other.to_string(),
        };
        // Through the error writer: the text may quote a client's byte
        // (`expected '$', got '\r'`), which must not end the line early.
        resp::reply::error_bytes(
            &mut self.out,
            format!("ERR Protocol error: {why}").as_bytes(),
        );
        let _ = cx.send(conn, &self.out);
        self.out.clear();
    }

    fn on_timer(&mut self, _cx: &mut Context<'_>, _timer: TimerId) {
        self.db.sweep(unix_ms(), SWEEP_BUDGET);
    }
}

fn main() -> ExitCode {
    common::run("resp_server", serve)
}

fn serve() -> io::Result<()> {
    common::init_logging();
    let mut addr = common::default_addr();
    let mut limits = Limits::default();
    let mut timeout = 0u64;
    let mut command_timeout = 0u64;
    let mut backend = BackendKind::default();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(common::invalid)? {
        use lexopt::prelude::*;
        match arg {
            Long("addr") => addr = common::addr(&mut parser)?,
            Long("max-bulk") => limits.max_bulk = common::value(&mut parser)?,
            Long("max-multibulk") => limits.max_multibulk = common::value(&mut parser)?,
            Long("timeout-s") => timeout = common::value(&mut parser)?,
            Long("command-timeout-s") => command_timeout = common::value(&mut parser)?,
            Long("backend") => backend = common::backend(&mut parser)?,
            Long("help") | Short('h') => common::print_help(USAGE),
            other => return Err(common::invalid(other.unexpected())),
        }
    }
    // The loop's own cap on one request: Redis's client-query-buffer-limit
    // is 1 GB, and so is the crate's largest message.
    let mut config = Config::new()
        .backend(backend)
        .decoder(MAX_MESSAGE, move || RespDecoder::new(limits));
    if timeout > 0 {
        // Redis's `timeout`: every byte read or written is progress, so a
        // client dripping a command a byte at a time is not idle...
        config = config.idle_timeout(Duration::from_secs(timeout));
    }
    if command_timeout > 0 {
        // ...and this bounds it: the command must be whole in time.
        config = config.message_deadline(Duration::from_secs(command_timeout));
    }
    let mut reactor = Reactor::with_config(config)?;
    let listener = common::listen(&mut reactor, addr)?;
    // Caught before the address is printed: a signal sent as soon as it
    // is read must find the loop listening for it. SIGINT or SIGTERM:
    // stop accepting, answer what was received, close.
    reactor.stop_on_signals()?;
    common::announce(&reactor, listener)?;
    reactor.context().set_periodic(Duration::from_millis(100));
    let mut server = RespServer {
        db: db::Db::default(),
        out: Vec::with_capacity(1024),
        clients: HashMap::new(),
        next_client_id: 0,
        info: commands::ServerInfo {
            started: std::time::Instant::now(),
            port: reactor.local_addr(listener).map_or(0, |a| a.port()),
            multiplexing_api: reactor.backend_name(),
            total_connections: 0,
            total_commands: 0,
        },
    };
    reactor.run(&mut server)
}
