//! A single-threaded I/O multiplexing reactor on [`mio`]: the classic Python
//! `select.select(inputs, outputs, [], 1)` echo server, grown into an event loop
//! that a real server can embed.
//!
//! One thread, one poller, many connections. The loop waits until some sockets
//! are ready, serves each one as far as it can go without blocking, and waits
//! again. A [`Handler`] says what to do with each message; a [`Context`] lets it
//! answer, close connections, set timers and stop the loop. No connection can
//! stall or crash the others: every error closes only the connection it
//! happened on.
//!
//! # A server in twenty lines
//!
//! The Python server greets each client and answers every chunk it receives with
//! `response: ` + the chunk. Here it is (the `select_server` example is the
//! commented version):
//!
//! ```no_run
//! use selectloop::codec::Chunks;
//! use selectloop::{Config, ConnId, Context, Handler, Reactor};
//!
//! struct Respond;
//!
//! impl Handler for Respond {
//!     fn on_connect(&mut self, cx: &mut Context<'_>, conn: ConnId) {
//!         let _ = cx.send(conn, b"Hello client-side");
//!     }
//!     fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, chunk: &[u8]) {
//!         let _ = cx.send_parts(conn, &[b"response: ", chunk]);
//!     }
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     let mut reactor = Reactor::with_config(Config::new().codec(Chunks::new(1024)))?;
//!     let listener = reactor.listen("127.0.0.1:8088")?;
//!     println!("{}", reactor.local_addr(listener).unwrap());
//!     reactor.run(&mut Respond)
//! }
//! ```
//!
//! # One turn of the loop
//!
//! [`Reactor::run_once`] is one turn; [`Reactor::run`] repeats it until a
//! handler calls [`Context::stop`]. A turn has nine phases, in this order:
//!
//! 1. **Timeout.** Zero if work is left from the last turn (a socket that
//!    spent its budget, output to flush, messages to handle, close hooks to
//!    run); else the time to the nearest deadline (the handler's timers and
//!    the loop's own: a paused listener's back-off, connect deadlines, the
//!    idle and message sweep), capped by the caller's timeout; else the
//!    caller's timeout. The Python server always waits up to one second,
//!    due or not.
//! 2. **Poll.** Ask the backend (epoll or kqueue by default; `poll(2)` or the
//!    seed's own `select(2)` with [`Config::backend`]) which sockets are
//!    ready: the `select()` call. A signal interrupting the wait (`EINTR`) restarts it with
//!    the time that remains. A turn that has work left by a turn that
//!    polled does that work without polling (a zero-timeout poll is a
//!    system call that mostly finds nothing); the turn after it polls
//!    again, so a new event waits one turn at most ([`Stats::polls`]).
//! 3. **Look up.** Each event carries a token: a slab slot and a generation. An
//!    event whose connection has closed (its slot perhaps already reused by a
//!    newer connection) is *stale*: counted in [`Stats::stale_events`], never
//!    acted on.
//! 4. **Accept.** A readable listener: accept until `WouldBlock` or the accept
//!    budget, insert each connection in the slab, register it, call
//!    [`Handler::on_connect`] (which may queue a greeting).
//! 5. **Read.** A readable connection: read until `WouldBlock` (or a short
//!    read) or the per-turn byte budget (64 KiB), cutting the bytes into
//!    messages with the [`codec`]. A connection that spent its budget goes on
//!    the ready list for the next turn. A read of 0 bytes is the end of the
//!    peer's input, not an error.
//! 6. **Handle.** For each connection with messages waiting, hand them to
//!    [`Handler::on_message`] one by one, oldest first.
//! 7. **Flush.** Write each connection's queued output at once (vectored when
//!    its buffer wraps). Only a write that returns `WouldBlock` puts the
//!    connection in the writable set (WRITABLE interest); its next WRITABLE
//!    event flushes it, and the interest is dropped once the buffer is empty.
//!    A socket that takes everything never costs an `epoll_ctl`.
//! 8. **Timers.** Run [`Handler::on_timer`] for every due timer, then flush
//!    what those hooks queued.
//! 9. **Free.** Release the slab slots of connections closed this turn (only
//!    now, so no event of this batch can reach a reused slot), and log the
//!    seed's four figures at `trace` level: sockets read from (`inputs`),
//!    readable events, writable events, connections waiting to write
//!    (`outputs`).
//!
//! Under load, one echoed message costs one `read`, one `write` and a share of
//! one `epoll_wait`; buffers come from a pool and go back to it once drained,
//! so the steady path does not allocate and an idle connection holds no
//! buffer.
//!
//! # Errors and faults
//!
//! Public functions return [`std::io::Result`]; only a failure of the poller
//! itself stops the loop. A connection that errs, resets, sends a message
//! longer than the codec allows, idles past its timeout, or whose handler
//! panics is closed alone, logged once, and reported to
//! [`Handler::on_close`] with its [`CloseReason`]. Every limit is a
//! [`Config`] setting with a safe default; [`Stats`] counts each time one is
//! hit. [`Reactor::shutdown`] stops gracefully.
//!
//! # Beyond one handler: timers, threads, blocking work, your own sockets
//!
//! Each of these runs as it is (`cargo test --doc`); the examples directory
//! has a program for each.
//!
//! **Timers**: a periodic tick, its id given to [`Handler::on_timer`]
//! (`examples/ticker.rs`):
//!
//! ```
//! use std::time::Duration;
//! use selectloop::{ConnId, Context, Handler, Reactor, TimerId};
//!
//! struct Ticks(u32);
//! impl Handler for Ticks {
//!     fn on_message(&mut self, _: &mut Context<'_>, _: ConnId, _: &[u8]) {}
//!     fn on_timer(&mut self, cx: &mut Context<'_>, _timer: TimerId) {
//!         self.0 += 1;
//!         if self.0 == 3 {
//!             cx.stop();
//!         }
//!     }
//! }
//! let mut reactor = Reactor::new()?;
//! reactor.context().set_periodic(Duration::from_millis(5));
//! let mut ticks = Ticks(0);
//! reactor.run(&mut ticks)?; // returns on the third tick
//! assert_eq!(ticks.0, 3);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! **Other threads** talk to the loop through a [`Handle`]: send to a
//! connection, close it, stop the loop, or run a closure on the loop
//! thread (`examples/chat_server.rs`):
//!
//! ```
//! use selectloop::{Context, ConnId, Reactor};
//!
//! let mut reactor = Reactor::new()?;
//! let handle = reactor.handle()?;
//! let stopper = std::thread::spawn(move || handle.stop());
//! let mut nothing = |_: &mut Context<'_>, _: ConnId, _: &[u8]| {};
//! reactor.run(&mut nothing)?; // returns once the other thread's stop arrives
//! stopper.join().unwrap().unwrap();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! **Blocking work** goes to the worker pool; its result comes back on the
//! loop thread, to the connection that asked (`examples/worker_pool.rs`):
//!
//! ```no_run
//! use selectloop::{Config, Context, ConnId, Reactor};
//!
//! let mut reactor = Reactor::with_config(Config::new().workers(4))?;
//! reactor.listen("127.0.0.1:0")?;
//! let mut hashing = |cx: &mut Context<'_>, conn: ConnId, line: &[u8]| {
//!     let line = line.to_vec();
//!     let _ = cx.submit(
//!         conn,
//!         move || line.iter().map(|&b| u64::from(b)).sum::<u64>(), // on a worker
//!         |cx, conn, sum| {
//!             let _ = cx.send_frame(conn, sum.to_string().as_bytes()); // on the loop
//!         },
//!     );
//! };
//! reactor.run(&mut hashing)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! **Outbound and Unix connections** are connections like the others:
//! [`Reactor::connect`] (or [`Context::connect`]) dials out, and
//! [`Reactor::listen_unix`] serves a path (`examples/proxy.rs`):
//!
//! ```
//! use selectloop::{Context, ConnId, Handler, Origin, Reactor};
//!
//! struct Dial(Option<Origin>);
//! impl Handler for Dial {
//!     fn on_connect(&mut self, cx: &mut Context<'_>, conn: ConnId) {
//!         if cx.origin(conn) == Some(Origin::Outbound) {
//!             self.0 = cx.origin(conn);
//!             cx.stop();
//!         }
//!     }
//!     fn on_message(&mut self, _: &mut Context<'_>, _: ConnId, _: &[u8]) {}
//! }
//! let mut reactor = Reactor::new()?;
//! let listener = reactor.listen("127.0.0.1:0")?;
//! let addr = reactor.local_addr(listener).unwrap();
//! reactor.connect(addr)?; // the loop connects to itself
//! let mut dial = Dial(None);
//! reactor.run(&mut dial)?;
//! assert_eq!(dial.0, Some(Origin::Outbound));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! **Datagrams**: [`Reactor::bind_udp`] puts a UDP socket on the loop; each
//! datagram goes to [`Handler::on_datagram`] with its sender, and
//! [`Context::send_to`] answers (a budget per turn keeps a flood from
//! starving the connections).
//!
//! **Your own descriptors** (a UDP socket, a pipe, a timerfd) join the same
//! poll with [`Reactor::register_source_with`], and **another event loop**
//! can drive this one a turn at a time with [`Reactor::run_once`]:
//!
//! ```
//! use std::time::Duration;
//! use selectloop::{Context, ConnId, Interest, Reactor};
//!
//! let mut reactor = Reactor::new()?;
//! let socket = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
//! let addr = socket.local_addr()?;
//! let mut got = Vec::new();
//! let (tx, rx) = std::sync::mpsc::channel();
//! reactor.register_source_with(socket, Interest::READABLE, move |socket, _cx, _event| {
//!     let mut buf = [0u8; 64];
//!     while let Ok((n, _)) = socket.recv_from(&mut buf) {
//!         let _ = tx.send(buf[..n].to_vec());
//!     }
//! })?;
//! std::net::UdpSocket::bind("127.0.0.1:0")?.send_to(b"datagram", addr)?;
//! let mut nothing = |_: &mut Context<'_>, _: ConnId, _: &[u8]| {};
//! for _ in 0..100 {
//!     reactor.run_once(&mut nothing, Some(Duration::from_millis(10)))?; // one turn
//!     got.extend(rx.try_iter());
//!     if !got.is_empty() {
//!         break;
//!     }
//! }
//! assert_eq!(got, [b"datagram".to_vec()]);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! **Signals**: [`Reactor::stop_on_signals`] makes SIGINT and SIGTERM a
//! graceful shutdown at the end of [`Reactor::run`];
//! [`Reactor::catch_signals`] hands others (SIGHUP, to reload) to
//! [`Handler::on_signal`] on the loop thread; a [`Group`] does the same for
//! all its loops with [`Group::run_until_signal`].
//!
//! **Protocols of your own** parse each message once: a
//! [`codec::Decoder`] returns what it read as its `Item` beside the bytes,
//! a `Handler<Item>` receives it in [`Handler::on_item`], and bytes the
//! protocol says to skip are a [`codec::Frame::discard`], dropped as they
//! arrive (`examples/memcached_server`, `examples/resp_server`,
//! `examples/http_server`; docs/protocols.md).
//!
//! The book in the repository (`book/`) takes a learner from the seed's
//! `select()` server to this reactor step by step.
//!
//! # Backends and cores
//!
//! [`backend::BackendKind`] chooses the multiplexer: `Epoll` (mio's epoll or
//! kqueue, edge-triggered, the default), `Poll` or `Select` (level-triggered;
//! select refuses descriptors past `FD_SETSIZE`, counted in
//! [`Stats::unwatchable`]), or `Uring` (Linux's io_uring: a multishot poll
//! per descriptor in a ring, changes submitted with the wait; epoll, with
//! one log line, where io_uring is refused). The loop behaves the same on
//! each: it reads until
//! `WouldBlock` within its budget, and watches only what it will act on
//! (docs/backends.md in the repository, with measured C10K curves).
//!
//! One reactor uses one core. A [`Group`] runs one per thread on the same
//! address, sharing nothing, with connections spread by `SO_REUSEPORT` or by
//! an acceptor thread ([`Balance`]).
//!
//! # Using it
//!
//! ```text
//! cargo add selectloop
//! ```
//!
//! Everything a server author needs is at the root ([`Reactor`],
//! [`Handler`], [`Context`], [`Config`], [`Group`], [`Handle`], [`Stats`]),
//! plus two modules: [`codec`] (framing: [`Chunks`](codec::Chunks),
//! [`Lines`](codec::Lines), [`LengthPrefixed`](codec::LengthPrefixed), and
//! the [`Decoder`](codec::Decoder) trait for a protocol of your own) and
//! [`backend`] (the multiplexer behind one small trait). The `examples/`
//! folder, published with the crate, holds the Python server's port and
//! servers of Redis's, memcached's, DNS's and HTTP's protocols.
//!
//! # Further reading
//!
//! The source repository, beside the code, has two guides that the
//! published crate leaves out: `docs/` (`from-python.md` maps the Python
//! server onto the loop line by line; `architecture.md`, `backends.md`,
//! `protocols.md`, `robustness.md`, `threads.md` and `benchmarks.md`, with
//! the measured figures) and a book, *From select() to a reactor*
//! (`book/`, built with `mdbook build book`), which teaches select, poll
//! and epoll servers from the Python original, with exercises.
//!
//! # Source map
//!
//! For a reader of the code: the folders of `src/`, each with one job.
//! None of them is public; their items are reached through the root.
//!
//! | Folder | Job |
//! |---|---|
//! | `reactor/` | [`Reactor`]: the turn's phases, accept, connection I/O, timers, sources, datagrams, shutdown |
//! | `conn/` | one connection: socket, inbound queue, output, lifecycle; the connection table |
//! | `context.rs`, `handler.rs`, `close.rs` | [`Context`], [`Handler`], [`CloseReason`] |
//! | `codec/` | the built-in codecs and the [`Decoder`](codec::Decoder) trait |
//! | `backend/` | epoll (mio), poll, select, io_uring |
//! | `listen/` | listeners, the spare descriptor for `EMFILE` |
//! | `schedule/` | timers, connect deadlines, the idle and message sweep |
//! | `sources/` | the embedder's descriptors, datagram sockets, signals |
//! | `remote/`, `handle.rs` | [`Handle`]: commands from other threads, the waker, the worker pool |
//! | `group/` | [`Group`]: one reactor per thread on one address |
//! | `config.rs`, `limits.rs`, `stats.rs`, `token.rs` | [`Config`], the limits applied, [`Stats`], ids with generations |
//!
//! # Features
//!
//! - `log` (default): log through the [`log`](https://docs.rs/log) crate. Off,
//!   the logging compiles to nothing.
//! - `exercises`: not for the library's users, and no change to it:
//!   `cargo xtask exercises` turns it on to test a reader's answers to the
//!   book's exercises in place of the book's solutions.
//!
//! # Platforms
//!
//! Linux: every backend (epoll, poll, select, io_uring), tested and
//! measured. macOS and FreeBSD: kqueue (through mio), poll and select; the
//! crate, its examples and its tests are built and linted for them, not
//! run or measured here. Windows: IOCP (through mio), poll (`WSAPoll`) and
//! select (Winsock's); built with mingw-w64 and tested under Wine.
//! Linux only: `SO_REUSEPORT` balancing ([`Balance::ReusePort`]), CPU
//! pinning ([`GroupBuilder::pin_to_cores`]), io_uring, and batched
//! datagrams (`recvmmsg`/`sendmmsg`); elsewhere the first two are refused
//! with an error, io_uring falls back to the default backend, and
//! datagrams go one a system call. Unix only: Unix domain sockets, the
//! signals other than [`Signal::Interrupt`] and [`Signal::Terminate`]
//! (Ctrl-C and Ctrl-Break on Windows), and the descriptor limit.
//!
//! A backend watches descriptors: [`RawSource`] is `RawFd` on Unix and
//! `RawSocket` on Windows, [`AsRawSource`] `AsRawFd` or `AsRawSocket`, so
//! code written for Unix compiles unchanged, and [`raw_source`] gives
//! either for code written for both.

#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#[macro_use]
mod logging;
pub mod backend;
mod close;
pub mod codec;
mod config;
mod conn;
mod context;
mod group;
mod handle;
mod handler;
mod interest;
mod limits;
mod listen;
mod reactor;
mod remote;
mod schedule;
mod sources;
mod stats;
mod stream;
mod sys;
mod token;
pub use bytes::Bytes;
pub use close::{CloseReason, Closed, Origin, SendError};
pub use config::{Config, EmfilePolicy};
pub use group::{Balance, Group, GroupBuilder};
pub use handle::{Handle, HandleError};
pub use handler::{Context, Handler};
pub use interest::Interest;
pub use reactor::Reactor;
pub use remote::JobRejected;
pub use schedule::{TimerId, MIN_PERIOD};
pub use sources::{DatagramPeer, Signal};
pub use stats::Stats;
pub use sys::{raw_source, AsRawSource, RawSource};
pub use token::{ConnId, ListenerId, SourceId};

/// The README's code blocks, compiled as doctests so they cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
