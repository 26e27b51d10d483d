//! Every limit and size of the reactor, in one place, with safe defaults.
//!
//! Each setting says why its default is what it is. Build one with the
//! chained setters:
//!
//! ```
//! use selectloop::Config;
//! use selectloop::codec::Chunks;
//!
//! let config = Config::new()
//!     .codec(Chunks::new(1024)) // the seed's recv(1024)
//!     .backlog(4096);
//! let reactor = selectloop::Reactor::with_config(config)?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::time::Duration;

use crate::backend::BackendKind;
use crate::codec::{Codec, CustomFraming, Decoder, TypeTag, MAX_MESSAGE};

/// What accepting does when the process runs out of descriptors
/// ([`Config::emfile_policy`]).
///
/// When `accept` fails with `EMFILE` or `ENFILE`, the connection stays in
/// the listener's backlog and the listener stays readable: retrying at once
/// would spin the loop at full CPU. There are two ways out.
///
/// `Pause` (the default) deregisters the listener for
/// [`Config::accept_backoff`] and re-arms it early as soon as a connection
/// closes and frees a descriptor. Clients wait in the backlog meanwhile and
/// are served once descriptors come back; those that arrive once the
/// backlog is full wait in SYN retries. Best when running out is a short
/// peak: nobody is turned away who could have been served a moment later,
/// which is what a server behind no load balancer wants.
///
/// `Shed` keeps one spare descriptor open (libuv's `uv__emfile_trick`,
/// also in Node): on `EMFILE` it closes the spare, accepts a waiting
/// connection, closes it at once, and repeats until the backlog is empty
/// (or the accept budget is spent), then takes the spare back. The
/// clients hear at once (their connection closes) instead of waiting for
/// a timeout, and the backlog never fills with connections nobody will
/// serve: best behind a load balancer or a client that retries elsewhere.
/// If the spare cannot be taken back, accepting pauses as with `Pause`.
/// Both are counted: [`Stats::accept_pauses`](crate::Stats::accept_pauses)
/// and [`Stats::accept_shed`](crate::Stats::accept_shed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EmfilePolicy {
    /// Deregister the listener for the back-off, or until a descriptor
    /// is freed.
    #[default]
    Pause,
    /// Accept and close the waiting connections with a spare descriptor.
    Shed,
}

/// Settings of a [`Reactor`](crate::Reactor).
#[derive(Clone, Debug)]
pub struct Config {
    pub(crate) backlog: i32,
    pub(crate) codec: Codec,
    pub(crate) custom_framing: Option<CustomFraming>,
    pub(crate) read_budget: usize,
    pub(crate) accept_budget: usize,
    pub(crate) read_buffer_size: usize,
    pub(crate) pooled_buffers: usize,
    pub(crate) nodelay: bool,
    pub(crate) events_capacity: usize,
    pub(crate) max_connections: usize,
    pub(crate) fd_reserve: usize,
    pub(crate) reject_message: Option<Vec<u8>>,
    pub(crate) accept_backoff: Duration,
    pub(crate) emfile_policy: EmfilePolicy,
    pub(crate) write_budget: usize,
    pub(crate) output_high_watermark: usize,
    pub(crate) output_low_watermark: usize,
    pub(crate) max_output: usize,
    pub(crate) max_inbound_messages: usize,
    pub(crate) max_inbound_bytes: usize,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) message_deadline: Option<Duration>,
    pub(crate) catch_panics: bool,
    pub(crate) workers: usize,
    pub(crate) job_queue: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) lingering_close: Duration,
    pub(crate) handle_queue: usize,
    pub(crate) handle_queue_bytes: usize,
    pub(crate) shutdown_grace: Duration,
    pub(crate) datagram_budget: usize,
    pub(crate) datagram_queue_bytes: usize,
    pub(crate) backend: BackendKind,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            backlog: 1024,
            codec: Codec::default(),
            custom_framing: None,
            read_budget: 64 * 1024,
            accept_budget: 256,
            read_buffer_size: 1024,
            pooled_buffers: 1024,
            nodelay: true,
            events_capacity: 1024,
            max_connections: 10_000,
            fd_reserve: 32,
            reject_message: None,
            accept_backoff: Duration::from_millis(100),
            emfile_policy: EmfilePolicy::Pause,
            write_budget: 64 * 1024,
            output_high_watermark: 64 * 1024,
            output_low_watermark: 16 * 1024,
            max_output: 32 * 1024 * 1024,
            max_inbound_messages: 1024,
            max_inbound_bytes: 256 * 1024,
            idle_timeout: None,
            message_deadline: None,
            catch_panics: true,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            job_queue: 1024,
            connect_timeout: Duration::from_secs(10),
            lingering_close: Duration::from_secs(5),
            handle_queue: 65_536,
            handle_queue_bytes: 64 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(5),
            datagram_budget: 64,
            datagram_queue_bytes: 1024 * 1024,
            backend: BackendKind::Epoll,
        }
    }
}

impl Config {
    /// The defaults.
    pub fn new() -> Config {
        Config::default()
    }

    /// Length of the kernel's queue of connections not yet accepted
    /// (`listen(2)`'s backlog). Default 1024: the seed's `listen(5)` refuses
    /// or drops connections as soon as six clients arrive at once; the kernel
    /// caps the value at `net.core.somaxconn`.
    pub fn backlog(mut self, backlog: u32) -> Config {
        self.backlog = backlog.min(i32::MAX as u32) as i32;
        self
    }

    /// How connections' bytes are cut into messages, by a built-in codec.
    /// Default: lines of at most 64 KiB. Replaces a
    /// [`decoder`](Config::decoder) set before. The codec also frames what
    /// [`Context::send_frame`](crate::Context::send_frame) sends.
    pub fn codec(mut self, codec: impl Into<Codec>) -> Config {
        self.codec = codec.into();
        self.custom_framing = None;
        self
    }

    /// Cuts connections' bytes into messages with a [`Decoder`] of your own:
    /// `make` is called once per connection (accepted or connected) for a
    /// decoder that may keep that connection's state. Messages, and bytes
    /// left unframed, longer than `max_message` close the connection with
    /// [`CloseReason::FrameTooLong`](crate::CloseReason::FrameTooLong),
    /// whatever the decoder says (at most 1 GiB, as for the codecs).
    /// [`Context::send_frame`](crate::Context::send_frame) still frames with
    /// [`codec`](Config::codec); a protocol with a decoder of its own
    /// usually encodes its answers itself and sends them with
    /// [`Context::send`](crate::Context::send).
    ///
    /// The handler run on this reactor takes the decoder's
    /// [`Item`](Decoder::Item)s (it implements `Handler<D::Item>`), or
    /// bytes alone (a plain `Handler`); any other item type makes
    /// [`Reactor::run`](crate::Reactor::run) fail at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use selectloop::codec::{DecodeError, Decoder, Frame};
    /// use selectloop::Config;
    ///
    /// /// Two-byte records, whatever they hold.
    /// struct Pairs;
    ///
    /// impl Decoder for Pairs {
    ///     type Item = ();
    ///     fn decode(&mut self, buf: &[u8]) -> Result<Option<Frame>, DecodeError> {
    ///         Ok((buf.len() >= 2).then(|| Frame::new(0..2, 2)))
    ///     }
    /// }
    ///
    /// let config = Config::new().decoder(2, || Pairs);
    /// ```
    pub fn decoder<D: Decoder>(
        mut self,
        max_message: usize,
        make: impl Fn() -> D + Send + Sync + 'static,
    ) -> Config {
        self.custom_framing = Some(CustomFraming::new(max_message.clamp(1, MAX_MESSAGE), make));
        self
    }

    /// Bytes read from one connection per turn before the loop moves on to
    /// the others. Default 64 KiB: a client that streams without pause would
    /// otherwise starve everyone else (read until `WouldBlock` never ends).
    /// A connection that hits it is served again on the next turn without
    /// waiting for an event (the ready list).
    pub fn read_budget(mut self, bytes: usize) -> Config {
        self.read_budget = bytes.max(1);
        self
    }

    /// Connections accepted per listener per turn. Default 256: a burst of new
    /// clients must not delay the answers owed to the ones already connected.
    pub fn accept_budget(mut self, connections: usize) -> Config {
        self.accept_budget = connections.max(1);
        self
    }

    /// The size of a fresh read buffer, and the least free space a read
    /// is given: a connection that wakes with a short request reads into
    /// (and zeroes) this much once; a buffer that fills is grown by doubling,
    /// within the read budget and inbound limits. Default 1 KiB, the seed's
    /// `recv(1024)`. Buffers are taken from the pool when bytes arrive or an
    /// answer is queued, and returned when drained, so an idle connection
    /// holds none.
    pub fn read_buffer_size(mut self, bytes: usize) -> Config {
        self.read_buffer_size = bytes.max(16);
        self
    }

    /// Drained buffers kept for reuse, of each kind (read and write), at
    /// least. Default 1024, one per event a poll returns by default: in a
    /// busy turn every ready connection holds a buffer until its messages
    /// are handled. Above this floor the pool keeps as many as were lent at
    /// once lately, so more busy connections than that still reuse their
    /// buffers instead of allocating (and zeroing) fresh ones; once demand
    /// falls, what it keeps above the floor halves each second. Buffers
    /// grown past 64 KiB (one default read budget) are never kept.
    pub fn pooled_buffers(mut self, buffers: usize) -> Config {
        self.pooled_buffers = buffers;
        self
    }

    /// Set `TCP_NODELAY` on accepted connections. Default on: a request and
    /// answer protocol must not wait for Nagle's algorithm to coalesce writes.
    pub fn nodelay(mut self, on: bool) -> Config {
        self.nodelay = on;
        self
    }

    /// Events taken from the kernel per poll. Default 1024; more wait for the
    /// next turn, nothing is lost.
    pub fn events_capacity(mut self, events: usize) -> Config {
        self.events_capacity = events.max(1);
        self
    }

    /// Connections open at once. Default 10,000 (Redis's `maxclients`).
    /// The reactor lowers it to the process's open-file limit
    /// (`RLIMIT_NOFILE`) minus [`fd_reserve`](Config::fd_reserve), so that
    /// the cap is hit before the kernel's limit. A connection over the cap
    /// is sent the [`reject_message`](Config::reject_message), if any, closed
    /// at once and counted in [`Stats::rejected`](crate::Stats::rejected);
    /// the clients already connected are not affected.
    pub fn max_connections(mut self, connections: usize) -> Config {
        self.max_connections = connections;
        self
    }

    /// Descriptors kept back from the connection cap for everything else the
    /// process opens (log files, the poller, the handler's own files).
    /// Default 32, as Redis reserves.
    pub fn fd_reserve(mut self, descriptors: usize) -> Config {
        self.fd_reserve = descriptors;
        self
    }

    /// Bytes written (best effort, never waited for) to a connection refused
    /// over the cap, before it is closed: `-ERR max clients reached\r\n`, say.
    /// Default none.
    pub fn reject_message(mut self, message: impl Into<Vec<u8>>) -> Config {
        self.reject_message = Some(message.into());
        self
    }

    /// How long accepting pauses when the process or system runs out of
    /// descriptors (`EMFILE`, `ENFILE`) or memory for sockets. Default
    /// 100 ms. The listener is deregistered meanwhile: the pending connection
    /// keeps it readable, and retrying at once would spin the loop at full
    /// CPU (a bug libuv, Node and mio users have all met). Accepting resumes
    /// early when a connection closes and frees a descriptor.
    pub fn accept_backoff(mut self, pause: Duration) -> Config {
        self.accept_backoff = pause;
        self
    }

    /// What accepting does when the process runs out of descriptors
    /// (`EMFILE`, `ENFILE`). Default [`EmfilePolicy::Pause`]; see there
    /// for why, and for what [`EmfilePolicy::Shed`] does instead.
    pub fn emfile_policy(mut self, policy: EmfilePolicy) -> Config {
        self.emfile_policy = policy;
        self
    }

    /// Bytes one connection may write in one turn before the loop moves on
    /// to the others (Redis's `NET_MAX_WRITES_PER_EVENT`). Default 64 KiB,
    /// like the read budget. Without it a client that reads as fast as the
    /// loop writes (a bulk download on loopback) would hold the turn for as
    /// long as its socket buffer keeps taking bytes; with it, the rest of
    /// its output waits for the next turn, which comes at once (no poll
    /// wait) after the other connections have had theirs. A single write
    /// may pass the budget by less than one write's worth; never 0.
    pub fn write_budget(mut self, bytes: usize) -> Config {
        self.write_budget = bytes.max(1);
        self
    }

    /// Output watermarks: above `high` bytes queued for a connection, its
    /// messages wait unhandled (and, once its inbound queue is full, its
    /// reading pauses); when the socket has taken enough to bring the queue
    /// under `low`, everything resumes. Defaults 64 KiB and 16 KiB, as asyncio
    /// and Netty use. A client that sends without reading can then cost the
    /// server no more than these buffers, whatever it sends.
    pub fn output_watermarks(mut self, low: usize, high: usize) -> Config {
        self.output_high_watermark = high.max(1);
        self.output_low_watermark = low.min(self.output_high_watermark);
        self
    }

    /// A hard limit on the output one connection leaves unread: a send made
    /// while more than this is queued closes the connection instead, with
    /// [`CloseReason::OutputLimit`](crate::CloseReason::OutputLimit) (Redis's
    /// `client-output-buffer-limit`). Default 32 MiB, Redis's hard limit for
    /// pub/sub clients: the watermarks bound what request-and-answer
    /// protocols queue, but output the server pushes on its own (broadcasts,
    /// timers, [`Handle::send`](crate::Handle::send)) to a client that does
    /// not read would otherwise grow without bound. `usize::MAX` lifts it.
    ///
    /// The limit is on the backlog, not on one send: what earlier turns
    /// queued and the peer has not read. Sends within one turn are taken
    /// whole, so one reply larger than the limit (a 40 MiB value) goes out,
    /// after the replies queued before it, and a connection holds at most
    /// this much plus what one turn queues for it (bounded by the
    /// protocol's own limit on a value, and by the watermarks, which stop
    /// handling its requests while its output is high).
    pub fn max_output(mut self, bytes: usize) -> Config {
        self.max_output = bytes;
        self
    }

    /// The inbound queue's limits: decoded messages waiting for the handler
    /// (default 1024) and the bytes they occupy (default 256 KiB). When either
    /// is reached, the connection's reading pauses (its READABLE interest is
    /// removed; it leaves `inputs`) until the queue drains.
    pub fn inbound_limits(mut self, messages: usize, bytes: usize) -> Config {
        self.max_inbound_messages = messages.max(1);
        self.max_inbound_bytes = bytes.max(1);
        self
    }

    /// Close connections on which no byte has moved, in either direction,
    /// for this long, with
    /// [`CloseReason::IdleTimeout`](crate::CloseReason::IdleTimeout) (Redis's
    /// `timeout`, counted from its `lastinteraction`). A client downloading
    /// a large answer slowly, or uploading a large message a little at a
    /// time, is making progress and is not idle; a client that reads
    /// nothing of what is queued for it is. Bytes trickling in keep a
    /// connection alive, so [`message_deadline`](Config::message_deadline)
    /// is the bound on a slowloris client. Default none (the seed's clients
    /// may sit at the prompt as long as they like);
    /// [`Context::set_idle_timeout`](crate::Context::set_idle_timeout)
    /// changes it for one connection. Checked a few times per timeout
    /// period, so a kick may come up to a tenth of it late, never early.
    pub fn idle_timeout(mut self, timeout: Duration) -> Config {
        self.idle_timeout = Some(timeout);
        self
    }

    /// Once a message has started to arrive, it must be complete within this
    /// time, or the connection closes with
    /// [`CloseReason::MessageTimeout`](crate::CloseReason::MessageTimeout):
    /// the defence against slowloris clients that hold a connection with a
    /// byte now and then (nginx's `client_header_timeout`), which the idle
    /// timeout, counting every byte as progress, does not stop. Default
    /// none; [`Context::set_message_deadline`](crate::Context::set_message_deadline)
    /// changes it for one connection (a server expecting a large upload).
    pub fn message_deadline(mut self, deadline: Duration) -> Config {
        self.message_deadline = Some(deadline);
        self
    }

    /// Catch a panic in a handler hook: the connection it was serving is
    /// closed with [`CloseReason::HandlerPanic`](crate::CloseReason::HandlerPanic),
    /// the panic is logged and counted, and the loop goes on. Default on.
    /// Off, the panic propagates out of [`Reactor::run`](crate::Reactor::run).
    pub fn catch_panics(mut self, catch: bool) -> Config {
        self.catch_panics = catch;
        self
    }

    /// Threads in the worker pool that
    /// [`Context::submit`](crate::Context::submit) hands jobs to. Default: the
    /// number of CPUs. The pool starts with the first job.
    pub fn workers(mut self, threads: usize) -> Config {
        self.workers = threads.max(1);
        self
    }

    /// Jobs that may wait for a worker. Default 1024. Past it, submitting
    /// fails with [`JobRejected::QueueFull`](crate::JobRejected::QueueFull)
    /// at once: the loop never blocks on the pool.
    pub fn job_queue(mut self, jobs: usize) -> Config {
        self.job_queue = jobs.max(1);
        self
    }

    /// How long a connection the server closes may linger. When the loop
    /// closes a connection whose peer may still be sending (its input was
    /// refused, or the handler closed it), it writes everything owed, shuts
    /// its sending side, and reads and discards what the peer still sends
    /// until the peer closes too, at most this long: closing at once with
    /// unread bytes would make the kernel send a reset, and the peer could
    /// lose its answer. nginx's `lingering_close` (its `lingering_time` is
    /// 30 s, `lingering_timeout` 5 s). Default 5 s; `Duration::ZERO` closes
    /// at once. Counted in [`Stats::lingered`](crate::Stats::lingered).
    pub fn lingering_close(mut self, linger: Duration) -> Config {
        self.lingering_close = linger;
        self
    }

    /// How long an outbound [`connect`](crate::Context::connect) may take
    /// before it fails with `TimedOut`. Default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Config {
        self.connect_timeout = timeout;
        self
    }

    /// The multiplexer [`Reactor::with_config`](crate::Reactor::with_config)
    /// builds. Default [`BackendKind::Epoll`] (mio: epoll, kqueue);
    /// [`BackendKind::Poll`] is `poll(2)`, level-triggered, for teaching and
    /// for comparing (its cost grows with the descriptors watched).
    pub fn backend(mut self, kind: BackendKind) -> Config {
        self.backend = kind;
        self
    }

    /// Commands (sends, closes, tasks, notifications) that other threads
    /// may queue through [`Handle`](crate::Handle)s before the loop takes
    /// them. Default 65,536, what the loop takes in one turn: a loop that
    /// falls further behind than that is overloaded, and senders are told
    /// ([`HandleError::QueueFull`](crate::HandleError::QueueFull)) instead
    /// of memory growing without bound. Worker results wait for room rather
    /// than fail.
    pub fn handle_queue(mut self, commands: usize) -> Config {
        self.handle_queue = commands.max(1);
        self
    }

    /// Bytes that [`Handle::send`](crate::Handle::send) calls may hold in
    /// the queue before the loop takes them. Default 64 MiB: the count
    /// bound alone would let 65,536 sends of a megabyte each queue 64 GiB.
    /// A send that would pass it gets
    /// [`HandleError::QueueFull`](crate::HandleError::QueueFull); one send
    /// larger than the whole bound is still taken when nothing else waits,
    /// so that no send is refused forever.
    pub fn handle_queue_bytes(mut self, bytes: usize) -> Config {
        self.handle_queue_bytes = bytes.max(1);
        self
    }

    /// How long the graceful shutdown a signal starts
    /// ([`Reactor::stop_on_signals`](crate::Reactor::stop_on_signals))
    /// gives the connections to drain before closing what is left.
    /// Default 5 s.
    pub fn shutdown_grace(mut self, grace: Duration) -> Config {
        self.shutdown_grace = grace;
        self
    }

    /// Datagrams read from one datagram socket per turn before the loop
    /// moves on. Default 64: a flood on a UDP port cannot keep the loop
    /// from its stream connections; the socket is served again next turn
    /// (the ready list), as a connection that spent its read budget is.
    pub fn datagram_budget(mut self, datagrams: usize) -> Config {
        self.datagram_budget = datagrams.max(1);
        self
    }

    /// Bytes of datagrams one datagram socket may queue while its send
    /// buffer is full. Default 1 MiB; past it,
    /// [`Context::send_to`](crate::Context::send_to) refuses (the datagram
    /// is dropped, as the network would drop it, and counted in
    /// [`Stats::datagrams_dropped`](crate::Stats::datagrams_dropped)).
    pub fn datagram_queue_bytes(mut self, bytes: usize) -> Config {
        self.datagram_queue_bytes = bytes;
        self
    }
}

impl Config {
    /// Refuses a handler that takes items the decoder does not make: its
    /// `on_item` could never be called with one. Every handler takes bytes
    /// alone.
    pub(crate) fn check_item_type<I: 'static>(&self) -> io::Result<()> {
        let wanted = TypeTag::of::<I>();
        let made = self
            .custom_framing
            .as_ref()
            .map_or_else(TypeTag::bytes, |framing| framing.item);
        if wanted == TypeTag::bytes() || wanted == made {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the handler takes items of type {}, but the configured framing makes {}",
                wanted.name, made.name
            ),
        ))
    }
}
