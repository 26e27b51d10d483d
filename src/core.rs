//! The loop's state and the work of each phase. [`Reactor`](crate::Reactor)
//! sequences the phases; [`Core`] does them, and is what a
//! [`Context`](crate::Context) reaches into.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::io::{AsRawFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use mio::{Interest, Token};
use slab::Slab;

use crate::backend::{Backend, Readiness};
use crate::buffer::BufferPool;
use crate::codec::FrameError;
use crate::config::Config;
use crate::conn::{Conn, Farewell, FlushEnd, QueueLimits, ReadEnd, State, OUTBOUND};
use crate::handle::{Command, Handle, JobDelivery, Shared};
use crate::handler::{CloseReason, Closed, Context, Handler, Origin, SendError};
use crate::limits::{self, Limit, LimitLog};
use crate::pool::{JobRejected, WorkerPool};
use crate::stats::Stats;
use crate::stream::{ListenSocket, Stream};
use crate::timer::Timers;
use crate::token::{self, ConnId, ListenerId, SourceId, TokenKind};

/// Everything but the handler and the event batch: what a [`Context`] reaches.
pub(crate) struct Core {
    pub(crate) backend: Box<dyn Backend>,
    pub(crate) config: Config,
    /// The connections, by slot: the Python server's `inputs` (minus the
    /// listener) and its `message` dict, in one table.
    pub(crate) conns: Slab<Conn>,
    /// The generation each slot last handed out; outlives the connections.
    generations: Vec<u32>,
    /// Listening sockets; `None` once closed by a shutdown.
    pub(crate) listeners: Vec<Option<Listener>>,
    /// The embedder's own descriptors, watched for it.
    pub(crate) sources: Slab<Source>,
    /// Commands from other threads, and the shared half every handle holds.
    remote: Option<Remote>,
    /// Threads for blocking work, started with the first job.
    workers: Option<WorkerPool>,
    /// Results of ordered jobs waiting for earlier ones, per connection.
    ordered: HashMap<ConnId, OrderedResults>,
    /// Deadlines of outbound connects in progress.
    connect_deadlines: BinaryHeap<Reverse<(Instant, ConnId)>>,
    /// Set by a handle's `shutdown`: `run` shuts down gracefully and returns.
    pub(crate) shutdown_requested: Option<Duration>,
    pub(crate) timers: Timers,
    pub(crate) pool: BufferPool,
    /// Sockets that must be served next turn without waiting for an event:
    /// they spent their budget, and edge-triggered polling would not report
    /// them again.
    ready: Vec<Token>,
    /// Connections with inbound messages to hand to the handler this turn.
    to_handle: Vec<ConnId>,
    /// Connections with output to write this turn.
    to_flush: Vec<ConnId>,
    /// Slots of connections closed this turn, freed at its end.
    pub(crate) to_free: Vec<usize>,
    /// Close hooks not yet run: closing happens in places (inside another
    /// hook, say) where the handler cannot be called back at once.
    close_hooks: VecDeque<(ConnId, CloseReason)>,
    pub(crate) stop_requested: bool,
    pub(crate) open_connections: usize,
    /// The connection cap in force (the configured one, fitted under the
    /// descriptor limit).
    pub(crate) max_connections: usize,
    /// When paused listeners are armed again (out of descriptors).
    accept_resume_at: Option<Instant>,
    /// When connections are next checked against the idle timeout and the
    /// message deadline.
    next_sweep: Option<Instant>,
    /// Origin of the millisecond clock kept in each connection.
    epoch: Instant,
    /// Set by a graceful shutdown: no accepting, connections close once drained.
    pub(crate) shutting_down: bool,
    limit_log: LimitLog,
    /// Sockets whose READABLE events are acted on: `len(inputs)`.
    pub(crate) inputs: usize,
    /// Connections waiting for WRITABLE: `len(outputs)`.
    pub(crate) outputs: usize,
    pub(crate) stats: Stats,
    /// When this turn woke up.
    pub(crate) now: Instant,
    /// The same, on the millisecond clock kept in connections.
    now_ms: u64,
}

#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) socket: ListenSocket,
    /// The bound address of a TCP listener.
    pub(crate) addr: Option<SocketAddr>,
    /// How logs name it: the address or the path.
    pub(crate) name: String,
    /// Deregistered until the accept back-off ends.
    paused: bool,
}

impl Listener {
    pub(crate) fn new(socket: ListenSocket, addr: Option<SocketAddr>) -> Listener {
        let name = match (&addr, socket.path()) {
            (Some(addr), _) => addr.to_string(),
            (None, Some(path)) => path.display().to_string(),
            (None, None) => String::from("listener"),
        };
        Listener {
            socket,
            addr,
            name,
            paused: false,
        }
    }
}

/// A descriptor of the embedder's, and the callback that serves it (none:
/// the handler's `on_source` does).
pub(crate) struct Source {
    pub(crate) fd: RawFd,
    pub(crate) callback: Option<SourceCallback>,
}

pub(crate) type SourceCallback = Box<dyn FnMut(&mut Context<'_>, &Readiness)>;

struct Remote {
    shared: Arc<Shared>,
    receiver: mpsc::Receiver<Command>,
}

#[derive(Default)]
struct OrderedResults {
    /// Sequence number the next ordered job of this connection gets.
    next_seq: u64,
    /// Sequence number whose result is delivered next.
    next_deliver: u64,
    waiting: BTreeMap<u64, JobDelivery>,
}

/// Slots reserved when the reactor starts (at most): 65,536 connections'
/// worth of address space, touched only as connections arrive.
const PREALLOCATED_SLOTS: usize = 65_536;

/// Commands taken from the channel per wake-up, so a flood from other
/// threads cannot hold the loop; the rest wait for the next turn.
const COMMANDS_PER_TURN: usize = 65_536;

/// The connection `id` names, if it is still the one in its slot and not
/// closed. A free function so that callers can borrow other fields of
/// [`Core`] alongside.
fn live_conn(conns: &mut Slab<Conn>, id: ConnId) -> Option<&mut Conn> {
    conns
        .get_mut(id.slot())
        .filter(|conn| conn.id == id && conn.state != State::Closed)
}

/// The text of a panic payload, for the log.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(non-string panic payload)"
    }
}

impl Core {
    pub(crate) fn new(config: Config, backend: Box<dyn Backend>) -> Core {
        let now = Instant::now();
        let max_connections =
            limits::effective_max_connections(config.max_connections, config.fd_reserve);
        let next_sweep = limits::sweep_interval(config.idle_timeout, config.message_deadline)
            .map(|interval| now + interval);
        Core {
            backend,
            pool: BufferPool::new(config.pooled_buffers, config.read_buffer_size),
            // Reserved up front for the connection cap (address space only:
            // pages are touched as slots are used), so that growing the table
            // never copies it and leaves the old copy's pages resident.
            conns: Slab::with_capacity(max_connections.min(PREALLOCATED_SLOTS)),
            generations: Vec::with_capacity(max_connections.min(PREALLOCATED_SLOTS)),
            listeners: Vec::new(),
            sources: Slab::new(),
            remote: None,
            workers: None,
            ordered: HashMap::new(),
            connect_deadlines: BinaryHeap::new(),
            shutdown_requested: None,
            timers: Timers::default(),
            ready: Vec::new(),
            to_handle: Vec::new(),
            to_flush: Vec::new(),
            to_free: Vec::new(),
            close_hooks: VecDeque::new(),
            stop_requested: false,
            open_connections: 0,
            max_connections,
            accept_resume_at: None,
            next_sweep,
            epoch: now,
            shutting_down: false,
            limit_log: LimitLog::default(),
            inputs: 0,
            outputs: 0,
            stats: Stats::default(),
            now,
            now_ms: 1,
            config,
        }
    }

    /// Starts a turn: reads the clock once for everything the turn stamps.
    pub(crate) fn begin_turn(&mut self) {
        self.now = Instant::now();
        // Never 0: 0 means "unset" in a connection's stamps.
        self.now_ms = self.now.saturating_duration_since(self.epoch).as_millis() as u64 + 1;
    }

    /// The reactor's clock in milliseconds at the start of this turn.
    fn now_ms(&self) -> u64 {
        self.now_ms
    }

    fn queue_limits(&self) -> QueueLimits {
        QueueLimits {
            messages: self.config.max_inbound_messages,
            bytes: self.config.max_inbound_bytes,
        }
    }

    /// Logs that `limit` was hit, at most once a second per limit.
    fn limit_hit(&mut self, limit: Limit, detail: std::fmt::Arguments<'_>) {
        if let Some(unlogged) = self.limit_log.hit(limit, self.now) {
            if unlogged > 0 {
                warn!(
                    "limit {} hit: {detail} ({unlogged} more since the last line)",
                    limit.setting()
                );
            } else {
                warn!("limit {} hit: {detail}", limit.setting());
            }
        }
    }

    // ----- phase 1 -----

    pub(crate) fn poll_timeout(&mut self, caller: Option<Duration>) -> Option<Duration> {
        if !self.ready.is_empty()
            || !self.to_flush.is_empty()
            || !self.to_handle.is_empty()
            || !self.close_hooks.is_empty()
        {
            return Some(Duration::ZERO);
        }
        let next = [
            self.timers.next_deadline(),
            self.accept_resume_at,
            self.next_sweep,
            self.connect_deadlines.peek().map(|Reverse((at, _))| *at),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(deadline) => {
                let until = deadline.saturating_duration_since(Instant::now());
                Some(caller.map_or(until, |c| c.min(until)))
            }
            None => caller,
        }
    }

    // ----- phases 3 to 5 -----

    /// Serves the sockets left on the ready list by the last turn.
    pub(crate) fn serve_ready_list<H: Handler + ?Sized>(&mut self, handler: &mut H) {
        let mut ready = std::mem::take(&mut self.ready);
        for token in ready.drain(..) {
            match token::decode(token) {
                TokenKind::Conn(id) => match self.live(id) {
                    Some(conn) => conn.ready_listed = false,
                    // Closed since it was listed: simply dropped from the
                    // list, which is not a stale event from the kernel.
                    None => continue,
                },
                TokenKind::Listener(_) => {}
                TokenKind::Source(_) | TokenKind::Waker => continue,
            }
            self.on_event(handler, Readiness::readable(token));
        }
        if self.ready.is_empty() {
            self.ready = ready; // keep the allocation
        }
    }

    fn live(&mut self, id: ConnId) -> Option<&mut Conn> {
        live_conn(&mut self.conns, id)
    }

    pub(crate) fn on_event<H: Handler + ?Sized>(&mut self, handler: &mut H, event: Readiness) {
        match token::decode(event.token) {
            TokenKind::Listener(listener) => {
                if event.readable {
                    self.accept(handler, listener);
                }
            }
            TokenKind::Source(source) => self.on_source(handler, source, event),
            TokenKind::Waker => self.drain_commands(handler),
            TokenKind::Conn(id) => self.on_conn_event(handler, id, event),
        }
    }

    fn on_conn_event<H: Handler + ?Sized>(
        &mut self,
        handler: &mut H,
        id: ConnId,
        event: Readiness,
    ) {
        let Some(conn) = self.live(id) else {
            // The connection closed earlier (maybe this very turn) and its
            // slot may already serve another: never act on it.
            self.stats.stale_events += 1;
            trace!("stale event for {id} ignored");
            return;
        };
        if conn.state == State::Connecting {
            self.finish_connect(handler, id);
            return;
        }
        if event.error {
            if let Ok(Some(error)) | Err(error) = conn.socket.take_error() {
                self.close(id, CloseReason::from_io(error));
                self.run_close_hooks(handler);
                return;
            }
        }
        if (event.readable || event.read_closed) && conn.reading {
            self.read(id, event.read_closed);
        }
        if let Some(conn) = self.live(id) {
            if (event.writable || event.write_closed) && conn.awaiting_writable {
                self.queue_flush(id);
            }
        }
        self.run_close_hooks(handler);
    }

    /// Phase 4: accept until `WouldBlock` or the budget is spent.
    fn accept<H: Handler + ?Sized>(&mut self, handler: &mut H, listener: ListenerId) {
        for _ in 0..self.config.accept_budget {
            let Some(Some(entry)) = self.listeners.get(listener.0) else {
                return;
            };
            if entry.paused {
                return;
            }
            match entry.socket.accept() {
                Ok(stream) => self.adopt(handler, stream, listener),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // The client gave up before we got to it, or a signal: next.
                Err(e) if limits::is_transient_accept_error(&e) => {}
                Err(e) => {
                    // Out of descriptors, or something unknown: retrying now
                    // would fail the same way at full CPU. Pause instead.
                    if limits::is_resource_exhaustion(&e) {
                        self.stats.accept_pauses += 1;
                    } else {
                        self.stats.accept_errors += 1;
                    }
                    let addr = entry.name.clone();
                    let backoff = self.config.accept_backoff;
                    self.pause_accepting();
                    self.limit_hit(
                        Limit::AcceptBackoff,
                        format_args!(
                            "accept on {addr} failed: {e}; accepting pauses for {backoff:?}"
                        ),
                    );
                    return;
                }
            }
        }
        // More may be queued, and no new edge will say so.
        self.stats.budget_exhausted += 1;
        self.ready.push(token::listener_token(listener));
    }

    /// Deregisters every listener until the back-off ends (or a connection
    /// closes and frees a descriptor).
    fn pause_accepting(&mut self) {
        for listener in self.listeners.iter_mut().flatten() {
            if !listener.paused {
                if let Err(e) = self.backend.delete(listener.socket.as_raw_fd()) {
                    debug!("pausing listener {}: {e}", listener.name);
                }
                listener.paused = true;
                self.inputs -= 1;
            }
        }
        self.accept_resume_at = Some(Instant::now() + self.config.accept_backoff);
    }

    fn resume_accepting(&mut self) {
        self.accept_resume_at = None;
        for (index, slot) in self.listeners.iter_mut().enumerate() {
            let Some(listener) = slot else { continue };
            if !listener.paused {
                continue;
            }
            let token = token::listener_token(ListenerId(index));
            match self
                .backend
                .add(listener.socket.as_raw_fd(), token, Interest::READABLE)
            {
                Ok(()) => {
                    listener.paused = false;
                    self.inputs += 1;
                    // Connections may have queued meanwhile: try at once.
                    self.ready.push(token);
                }
                Err(e) => {
                    warn!("cannot re-arm listener {}: {e}", listener.name);
                    self.accept_resume_at = Some(Instant::now() + self.config.accept_backoff);
                }
            }
        }
    }

    /// Inserts an accepted connection: `inputs.append(conn)` and the greeting.
    fn adopt<H: Handler + ?Sized>(
        &mut self,
        handler: &mut H,
        stream: Stream,
        listener: ListenerId,
    ) {
        if self.open_connections >= self.max_connections.min(token::MAX_SLOTS) {
            self.reject(stream);
            return;
        }
        if self.config.nodelay {
            stream.set_nodelay();
        }
        let Ok(id) = self.insert_conn(stream, listener.0 as u32, State::Open) else {
            return;
        };
        self.stats.accepted += 1;
        if !self.call_hook(handler, "on_connect", |h, cx| h.on_connect(cx, id)) {
            self.close(id, CloseReason::HandlerPanic);
        }
        self.run_close_hooks(handler);
    }

    /// Puts a socket in the slab under a fresh generation and registers it:
    /// READABLE for an open connection, WRITABLE for one still connecting.
    /// Registration comes first, so a failure leaves nothing behind.
    fn insert_conn(&mut self, stream: Stream, origin: u32, state: State) -> io::Result<ConnId> {
        let now_ms = self.now_ms();
        let entry = self.conns.vacant_entry();
        let slot = entry.key();
        if slot >= self.generations.len() {
            self.generations.resize(slot + 1, 0);
        }
        let generation = ConnId::next_generation(self.generations[slot]);
        let id = ConnId::new(slot, generation);
        let interest = if state == State::Connecting {
            Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if let Err(e) = self.backend.add(stream.as_raw_fd(), id.token(), interest) {
            warn!("{} dropped: cannot register it: {e}", stream.peer_name());
            return Err(e);
        }
        self.generations[slot] = generation;
        trace!("{id} set up ({})", stream.peer_name());
        let mut conn = Conn::new(stream, id, origin);
        conn.interest = Some(interest);
        conn.last_message_ms = now_ms;
        conn.state = state;
        conn.reading = state == State::Open;
        entry.insert(conn);
        self.open_connections += 1;
        if state == State::Open {
            self.inputs += 1;
        }
        Ok(id)
    }

    /// Over the cap: a best-effort farewell, then the socket is dropped.
    fn reject(&mut self, mut stream: Stream) {
        self.stats.rejected += 1;
        if let Some(message) = &self.config.reject_message {
            // Never waited for: a fresh socket's buffer takes a short line.
            let _ = stream.write(message);
        }
        let peer = stream.peer_name();
        drop(stream);
        let cap = self.max_connections;
        self.limit_hit(
            Limit::MaxConnections,
            format_args!("{cap} connections open; connection from {peer} refused"),
        );
    }

    /// Phase 5: read what the socket has, within the byte budget and the
    /// inbound queue's limits.
    fn read(&mut self, id: ConnId, peer_closed: bool) {
        let budget = self.config.read_budget;
        let codec = self.config.codec;
        let limits = self.queue_limits();
        let now_ms = self.now_ms();
        let Some(conn) = live_conn(&mut self.conns, id) else {
            return;
        };
        let queued_before = conn.frames.len();
        let (bytes, end) = conn.read_frames(&codec, budget, limits, peer_closed, &mut self.pool);
        self.stats.bytes_read += bytes as u64;
        let completed = conn.frames.len() > queued_before;
        if completed {
            conn.last_message_ms = now_ms;
        }
        // The message deadline runs from the first byte of a message.
        if !conn.has_partial_message() {
            conn.partial_since_ms = 0;
        } else if completed || conn.partial_since_ms == 0 {
            conn.partial_since_ms = now_ms;
        }
        let handling_paused = conn.handling_paused;
        match end {
            ReadEnd::Drained => {}
            ReadEnd::BudgetSpent => {
                self.stats.budget_exhausted += 1;
                self.put_on_ready_list(id);
            }
            ReadEnd::QueueFull => {
                if handling_paused {
                    // Nothing will drain the queue until the peer reads.
                    self.pause_reading(id);
                } else {
                    // Handling this turn drains it; read on next turn.
                    self.put_on_ready_list(id);
                }
            }
            ReadEnd::EndOfInput => {
                // Half-close: the peer sends nothing more but may still read.
                // Answer what it sent, then close (phase 6 decides when).
                conn.reading = false;
                self.inputs -= 1;
                self.queue_handling(id);
            }
            ReadEnd::TooLong(e) => {
                self.frame_too_long(id, e);
                return;
            }
            ReadEnd::Failed(e) => {
                self.close(id, CloseReason::from_io(e));
                return;
            }
        }
        if completed {
            self.queue_handling(id);
        }
    }

    fn frame_too_long(&mut self, id: ConnId, error: FrameError) {
        self.limit_hit(
            Limit::FrameTooLong,
            format_args!(
                "{id} sent a message of {} bytes, over {}",
                error.len, error.max
            ),
        );
        self.close(id, CloseReason::FrameTooLong(error));
    }

    fn put_on_ready_list(&mut self, id: ConnId) {
        if let Some(conn) = self.live(id) {
            if !conn.ready_listed {
                conn.ready_listed = true;
                self.ready.push(id.token());
            }
        }
    }

    /// Takes the connection out of `inputs` until its inbound queue drains.
    fn pause_reading(&mut self, id: ConnId) {
        let Some(conn) = self.live(id) else { return };
        if !conn.reading {
            return;
        }
        conn.reading = false;
        conn.reading_paused = true;
        let (queued, bytes) = (conn.frames.len(), conn.output_len());
        self.inputs -= 1;
        self.stats.read_pauses += 1;
        self.update_interest(id);
        self.limit_hit(
            Limit::InboundQueue,
            format_args!(
                "{id} has {queued} messages waiting and {bytes} bytes of output; reading paused"
            ),
        );
    }

    fn resume_reading(&mut self, id: ConnId) {
        let Some(conn) = self.live(id) else { return };
        if !conn.reading_paused || !conn.is_open() {
            return;
        }
        conn.reading_paused = false;
        if conn.paused_by_handler {
            return; // the handler resumes it when it sees fit
        }
        conn.reading = true;
        self.inputs += 1;
        self.update_interest(id);
        // Bytes may have arrived while paused, with no edge to come for them.
        self.put_on_ready_list(id);
    }

    fn queue_handling(&mut self, id: ConnId) {
        if let Some(conn) = self.live(id) {
            if !conn.queued_for_handling {
                conn.queued_for_handling = true;
                self.to_handle.push(id);
            }
        }
    }

    fn queue_flush(&mut self, id: ConnId) {
        if let Some(conn) = self.live(id) {
            if !conn.queued_for_flush {
                conn.queued_for_flush = true;
                self.to_flush.push(id);
            }
        }
    }

    // ----- phase 6 -----

    /// Hands each queued message to the handler, oldest first (the seed's
    /// `message[w].pop()` takes the newest), while the connection's output
    /// stays under the high watermark.
    pub(crate) fn handle_inbound<H: Handler + ?Sized>(&mut self, handler: &mut H) {
        let high = self.config.output_high_watermark;
        let mut list = std::mem::take(&mut self.to_handle);
        for id in list.drain(..) {
            let Some(conn) = self.live(id) else { continue };
            conn.queued_for_handling = false;
            // The handler may send to any connection, this one included, so
            // the message bytes are lent out of the connection meanwhile.
            let buf = conn.take_inbuf();
            let mut consumed = 0;
            // Stop as soon as the connection closes or starts closing (what it
            // sent after that is not answered), or its output passes the
            // high watermark (the rest waits until the peer reads).
            while let Some(frame) = self.live(id).filter(|c| c.is_open()).and_then(|c| {
                c.handling_paused = c.output_len() >= high && !c.frames.is_empty();
                if c.handling_paused {
                    None
                } else {
                    c.frames.pop_front()
                }
            }) {
                consumed = frame.next as usize;
                self.stats.messages += 1;
                let msg = &buf[frame.start as usize..frame.end as usize];
                if !self.call_hook(handler, "on_message", |h, cx| h.on_message(cx, id, msg)) {
                    self.close(id, CloseReason::HandlerPanic);
                }
                self.run_close_hooks(handler);
            }
            match self.conns.get_mut(id.slot()).filter(|c| c.id == id) {
                Some(conn) => conn.restore_inbuf(buf, consumed, &mut self.pool),
                None => self.pool.give_inbound(buf, VecDeque::new()),
            }
            self.after_handling(id);
        }
        // Keep the list's allocation for the next turn.
        list.append(&mut self.to_handle);
        self.to_handle = list;
    }

    /// Decides what a connection does next once its queue was served: close
    /// after its input ended, or pause or resume reading.
    fn after_handling(&mut self, id: ConnId) {
        let limits = self.queue_limits();
        let Some(conn) = self.live(id) else { return };
        if !conn.is_open() {
            return;
        }
        if conn.input_ended {
            if !conn.frames.is_empty() {
                return; // still waiting for room in the output
            }
            if conn.has_output() {
                conn.state = State::Closing(Farewell::PeerClosed);
                self.queue_flush(id);
            } else {
                self.close(id, CloseReason::PeerClosed);
            }
        } else if conn.reading && conn.queue_full(limits) {
            self.pause_reading(id);
        } else if conn.reading_paused && conn.frames.is_empty() {
            self.resume_reading(id);
        }
    }

    // ----- phase 7 -----

    /// Writes queued output right away; only a write that would block puts
    /// the connection in the writable set (and costs an `epoll_ctl`).
    pub(crate) fn flush<H: Handler + ?Sized>(&mut self, handler: &mut H) {
        let low = self.config.output_low_watermark;
        let mut drained = Vec::new();
        let mut list = std::mem::take(&mut self.to_flush);
        for id in list.drain(..) {
            let Some(conn) = live_conn(&mut self.conns, id) else {
                continue;
            };
            conn.queued_for_flush = false;
            if conn.state == State::Connecting {
                continue; // flushed once the connect completes
            }
            let (bytes, end) = conn.flush(&mut self.pool);
            self.stats.bytes_written += bytes as u64;
            let resume_handling = conn.handling_paused && conn.output_len() <= low;
            if conn.above_high && conn.output_len() <= low {
                conn.above_high = false;
                drained.push(id);
            }
            match end {
                FlushEnd::Empty => {
                    if conn.awaiting_writable {
                        conn.awaiting_writable = false;
                        self.outputs -= 1;
                        self.update_interest(id);
                    }
                    if let Some(conn) = self.live(id) {
                        if let State::Closing(farewell) = conn.state {
                            let reason = match farewell {
                                Farewell::PeerClosed => CloseReason::PeerClosed,
                                Farewell::ByHandler => CloseReason::ClosedByHandler,
                            };
                            self.close(id, reason);
                        };
                    }
                }
                FlushEnd::Blocked => {
                    self.stats.writes_blocked += 1;
                    if !conn.awaiting_writable {
                        conn.awaiting_writable = true;
                        self.outputs += 1;
                        self.update_interest(id);
                    }
                }
                FlushEnd::Failed(e) => {
                    self.close(id, CloseReason::from_io(e));
                }
            }
            if resume_handling {
                if let Some(conn) = self.live(id) {
                    conn.handling_paused = false;
                    self.queue_handling(id);
                }
            }
        }
        list.append(&mut self.to_flush);
        self.to_flush = list;
        self.run_close_hooks(handler);
        for id in drained {
            if self.is_open(id) {
                self.call_hook(handler, "on_drained", |h, cx| h.on_drained(cx, id));
                self.run_close_hooks(handler);
            }
        }
    }

    /// Brings the backend's registration in line with what the connection
    /// wants; a no-op (no system call) when nothing changed.
    fn update_interest(&mut self, id: ConnId) {
        let Some(conn) = self.live(id) else { return };
        let wanted = conn.wanted_interest();
        if wanted == conn.interest {
            return;
        }
        let fd = conn.socket.as_raw_fd();
        let current = conn.interest;
        self.stats.interest_changes += 1;
        let result = match (current, wanted) {
            (None, Some(interest)) => self.backend.add(fd, id.token(), interest),
            (Some(_), Some(interest)) => self.backend.modify(fd, id.token(), interest),
            (Some(_), None) => self.backend.delete(fd),
            (None, None) => Ok(()),
        };
        match result {
            Ok(()) => {
                if let Some(conn) = self.live(id) {
                    conn.interest = wanted;
                };
            }
            Err(e) => {
                self.close(id, CloseReason::Error(e));
            }
        }
    }

    // ----- phase 8 -----

    /// Re-arms paused listeners and kicks idle and slow connections when
    /// their time has come.
    pub(crate) fn run_limit_timers<H: Handler + ?Sized>(&mut self, handler: &mut H) {
        let now = Instant::now();
        if matches!(self.accept_resume_at, Some(at) if at <= now) && !self.shutting_down {
            self.resume_accepting();
        }
        if !self.connect_deadlines.is_empty() {
            self.expire_connects(now);
            self.run_close_hooks(handler);
        }
        if matches!(self.next_sweep, Some(at) if at <= now) {
            self.sweep_timeouts();
            self.run_close_hooks(handler);
        }
    }

    fn sweep_timeouts(&mut self) {
        let idle = self.config.idle_timeout;
        let deadline = self.config.message_deadline;
        self.next_sweep = limits::sweep_interval(idle, deadline).map(|i| Instant::now() + i);
        let now_ms = self.now_ms();
        // Strictly more than the limit in whole milliseconds: never early.
        let over = |since: u64, limit: Option<Duration>| {
            limit.is_some_and(|l| since != 0 && now_ms.saturating_sub(since) > l.as_millis() as u64)
        };
        let victims: Vec<(ConnId, CloseReason)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.state != State::Closed)
            .filter_map(|(_, c)| {
                if over(c.last_message_ms, idle) {
                    Some((c.id, CloseReason::IdleTimeout))
                } else if over(c.partial_since_ms, deadline) {
                    Some((c.id, CloseReason::MessageTimeout))
                } else {
                    None
                }
            })
            .collect();
        for (id, reason) in victims {
            let limit = match reason {
                CloseReason::IdleTimeout => Limit::IdleTimeout,
                _ => Limit::MessageDeadline,
            };
            self.limit_hit(limit, format_args!("{id} closed"));
            self.close(id, reason);
        }
    }

    // ----- phase 9, and shutdown -----

    /// During a shutdown: closes every connection that has nothing left to
    /// read, answer or write.
    pub(crate) fn close_drained<H: Handler + ?Sized>(&mut self, handler: &mut H) {
        let drained: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.is_open()
                    && !c.has_output()
                    && c.frames.is_empty()
                    && !c.ready_listed
                    && !c.queued_for_handling
            })
            .map(|(_, c)| c.id)
            .collect();
        for id in drained {
            self.close(id, CloseReason::Shutdown);
        }
        self.run_close_hooks(handler);
    }

    /// Starts a graceful shutdown: listeners closed, every connection read
    /// once more (what clients sent before the shutdown still gets answered).
    pub(crate) fn begin_shutdown(&mut self) {
        self.shutting_down = true;
        self.accept_resume_at = None;
        for slot in &mut self.listeners {
            if let Some(listener) = slot.take() {
                if !listener.paused {
                    let _ = self.backend.delete(listener.socket.as_raw_fd());
                    self.inputs -= 1;
                }
                debug!("stopped listening on {}", listener.name);
            }
        }
        let open: Vec<ConnId> = self.conns.iter().map(|(_, c)| c.id).collect();
        for id in open {
            if self.live(id).is_some_and(|c| c.reading) {
                self.put_on_ready_list(id);
            }
        }
    }

    /// Closes every connection still open (the shutdown deadline passed).
    pub(crate) fn close_all<H: Handler + ?Sized>(
        &mut self,
        handler: &mut H,
        reason: fn() -> CloseReason,
    ) {
        let open: Vec<ConnId> = self.conns.iter().map(|(_, c)| c.id).collect();
        for id in open {
            self.close(id, reason());
        }
        self.run_close_hooks(handler);
    }

    pub(crate) fn free_closed(&mut self) {
        for slot in self.to_free.drain(..) {
            self.conns.remove(slot);
        }
    }

    // ----- closing -----

    /// Closes a connection at once: out of `inputs` and `outputs`,
    /// deregistered, buffers returned. The socket itself is dropped with the
    /// slot at the end of the turn. Returns `false` if it was already closed.
    fn close(&mut self, id: ConnId, reason: CloseReason) -> bool {
        let Some(conn) = live_conn(&mut self.conns, id) else {
            return false;
        };
        if conn.reading {
            conn.reading = false;
            self.inputs -= 1;
        }
        if conn.awaiting_writable {
            conn.awaiting_writable = false;
            self.outputs -= 1;
        }
        conn.state = State::Closed;
        if conn.interest.take().is_some() {
            if let Err(e) = self.backend.delete(conn.socket.as_raw_fd()) {
                debug!("{id}: deregister failed: {e}");
            }
        }
        conn.discard_input(&mut self.pool);
        conn.discard_output(&mut self.pool);
        let socket = &conn.socket;
        self.open_connections -= 1;
        self.stats.closed += 1;
        self.to_free.push(id.slot());
        let counter = match &reason {
            CloseReason::PeerClosed => &mut self.stats.closed_by_peer,
            CloseReason::Reset => &mut self.stats.resets,
            CloseReason::Error(_) => &mut self.stats.errors,
            CloseReason::ClosedByHandler => &mut self.stats.closed_by_handler,
            CloseReason::FrameTooLong(_) => &mut self.stats.frames_too_long,
            CloseReason::IdleTimeout => &mut self.stats.idle_kicks,
            CloseReason::MessageTimeout => &mut self.stats.deadline_kicks,
            CloseReason::OutputLimit => &mut self.stats.output_limit_kicks,
            CloseReason::HandlerPanic => &mut self.stats.panic_kicks,
            CloseReason::Shutdown => &mut self.stats.shutdown_closes,
            CloseReason::ConnectFailed(_) => &mut self.stats.connect_failures,
        };
        *counter += 1;
        match &reason {
            CloseReason::FrameTooLong(_)
            | CloseReason::Error(_)
            | CloseReason::HandlerPanic
            | CloseReason::OutputLimit => {
                warn!("{id} ({}) closed: {reason}", socket.peer_name())
            }
            _ => debug!("{id} ({}) closed: {reason}", socket.peer_name()),
        }
        self.close_hooks.push_back((id, reason));
        self.ordered.remove(&id);
        // A descriptor was freed: a listener paused for lack of them may
        // try again now rather than at the end of its back-off.
        if self.accept_resume_at.is_some() && !self.shutting_down {
            self.accept_resume_at = Some(self.now);
        }
        true
    }

    /// Runs the close hooks of connections closed since the last call. A
    /// hook may close more connections; their hooks run here too.
    pub(crate) fn run_close_hooks<H: Handler + ?Sized>(&mut self, handler: &mut H) {
        while let Some((id, reason)) = self.close_hooks.pop_front() {
            self.call_hook(handler, "on_close", |h, cx| h.on_close(cx, id, &reason));
        }
    }

    /// Calls one handler hook. With [`Config::catch_panics`] a panic is caught,
    /// logged and counted, and `false` returned so the caller can close the
    /// connection concerned; without, it propagates.
    pub(crate) fn call_hook<H: Handler + ?Sized>(
        &mut self,
        handler: &mut H,
        hook: &'static str,
        call: impl FnOnce(&mut H, &mut Context<'_>),
    ) -> bool {
        if !self.config.catch_panics {
            call(handler, &mut Context { core: self });
            return true;
        }
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            call(handler, &mut Context { core: self })
        }));
        match outcome {
            Ok(()) => true,
            Err(payload) => {
                self.stats.handler_panics += 1;
                warn!("handler panicked in {hook}: {}", panic_text(&*payload));
                false
            }
        }
    }

    // ----- what a Context does -----

    pub(crate) fn send(&mut self, id: ConnId, parts: &[&[u8]]) -> Result<(), Closed> {
        let max_output = self.config.max_output;
        // Bytes for a connection still connecting wait for it to open.
        let Some(conn) =
            live_conn(&mut self.conns, id).filter(|c| c.is_open() || c.state == State::Connecting)
        else {
            return Err(Closed(id));
        };
        if let Some(max) = max_output {
            let adding: usize = parts.iter().map(|p| p.len()).sum();
            if conn.output_len() + adding > max {
                let queued = conn.output_len();
                self.limit_hit(
                    Limit::MaxOutput,
                    format_args!("{id} has {queued} bytes queued, {adding} more would pass {max}"),
                );
                self.close(id, CloseReason::OutputLimit);
                return Err(Closed(id));
            }
        }
        conn.queue(parts, &mut self.pool);
        if conn.output_len() > self.config.output_high_watermark {
            conn.above_high = true;
        }
        self.stats.messages_out += 1;
        // A connection in the writable set gets flushed by its WRITABLE event;
        // trying now would only meet WouldBlock again.
        if !conn.awaiting_writable {
            self.queue_flush(id);
        }
        Ok(())
    }

    pub(crate) fn send_frame(&mut self, id: ConnId, payload: &[u8]) -> Result<(), SendError> {
        let codec = self.config.codec;
        let max = codec.max_message();
        if payload.len() > max {
            return Err(SendError::TooLong(FrameError {
                len: payload.len(),
                max,
            }));
        }
        let (header, header_len, trailer) = codec.frame_parts(payload.len());
        self.send(id, &[&header[..header_len], payload, trailer])?;
        Ok(())
    }

    pub(crate) fn close_after_flush(&mut self, id: ConnId) -> bool {
        let Some(conn) = live_conn(&mut self.conns, id) else {
            return false;
        };
        if !conn.has_output() {
            return self.close(id, CloseReason::ClosedByHandler);
        }
        if conn.is_open() {
            conn.state = State::Closing(Farewell::ByHandler);
            if conn.reading {
                conn.reading = false;
                self.inputs -= 1;
            }
            conn.discard_input(&mut self.pool);
        }
        true
    }

    pub(crate) fn close_now(&mut self, id: ConnId) -> bool {
        self.close(id, CloseReason::ClosedByHandler)
    }

    pub(crate) fn is_open(&self, id: ConnId) -> bool {
        matches!(self.conns.get(id.slot()), Some(c) if c.id == id && c.is_open())
    }

    pub(crate) fn peer_addr(&self, id: ConnId) -> Option<SocketAddr> {
        self.conns
            .get(id.slot())
            .filter(|c| c.id == id && c.state != State::Closed)
            .and_then(|c| c.socket.peer_addr())
    }

    pub(crate) fn pending_output(&self, id: ConnId) -> usize {
        self.conns
            .get(id.slot())
            .filter(|c| c.id == id)
            .map_or(0, |c| c.output_len())
    }

    pub(crate) fn set_timer(
        &mut self,
        after: Duration,
        period: Option<Duration>,
    ) -> crate::timer::TimerId {
        // From the real now, not the turn's: a deadline computed from an
        // earlier instant could fire before `after` has passed.
        let now = Instant::now();
        let deadline = now
            .checked_add(after)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        self.timers.insert(deadline, period)
    }

    pub(crate) fn add_source(
        &mut self,
        fd: RawFd,
        interest: Interest,
        callback: Option<SourceCallback>,
    ) -> io::Result<SourceId> {
        let entry = self.sources.vacant_entry();
        let id = SourceId(entry.key());
        self.backend.add(fd, token::source_token(id), interest)?;
        entry.insert(Source { fd, callback });
        Ok(id)
    }

    pub(crate) fn remove_source(&mut self, id: SourceId) -> io::Result<()> {
        if !self.sources.contains(id.0) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "unknown source"));
        }
        // Deregister before the source (and its descriptor) is dropped.
        let fd = self.sources[id.0].fd;
        let result = self.backend.delete(fd);
        self.sources.remove(id.0);
        result
    }
}

/// Other threads, the worker pool, outbound connections and the embedder's
/// own sources: what the loop does besides serving accepted connections.
impl Core {
    /// The handle for other threads, created with its waker on first use.
    pub(crate) fn handle(&mut self) -> io::Result<Handle> {
        if let Some(remote) = &self.remote {
            return Ok(Handle {
                shared: remote.shared.clone(),
            });
        }
        let registry = self.backend.mio_registry().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "this backend cannot be woken from other threads",
            )
        })?;
        let waker = mio::Waker::new(registry, token::WAKER_TOKEN)?;
        let (shared, receiver) = Shared::new(waker);
        self.remote = Some(Remote {
            shared: shared.clone(),
            receiver,
        });
        Ok(Handle { shared })
    }

    /// Marks every handle dead: their calls fail from now on.
    pub(crate) fn close_handles(&mut self) {
        if let Some(remote) = &self.remote {
            remote.shared.close();
        }
    }

    /// The waker fired: carry out what other threads asked.
    fn drain_commands<H: Handler + ?Sized>(&mut self, handler: &mut H) {
        let Some(remote) = &self.remote else { return };
        // Cleared before draining: a command queued from now on wakes the
        // loop again, so none is left behind.
        remote.shared.clear_pending();
        self.stats.handle_wakeups += 1;
        for _ in 0..COMMANDS_PER_TURN {
            let Some(remote) = &self.remote else { return };
            let Ok(command) = remote.receiver.try_recv() else {
                return;
            };
            self.stats.handle_commands += 1;
            self.execute(handler, command);
        }
        // More are queued than one turn takes: come back next turn.
        if let Some(remote) = &self.remote {
            remote.shared.clear_pending();
            let _ = remote.shared.push_wake();
        }
    }

    fn execute<H: Handler + ?Sized>(&mut self, handler: &mut H, command: Command) {
        match command {
            Command::Send(conn, bytes) => {
                if self.send(conn, &[&bytes]).is_err() {
                    self.undelivered(conn, "send");
                }
            }
            Command::Close(conn) => {
                if !self.close_after_flush(conn) {
                    self.undelivered(conn, "close");
                }
            }
            Command::Stop => self.stop_requested = true,
            Command::Shutdown(grace) => {
                self.shutdown_requested = Some(grace);
                self.stop_requested = true;
            }
            Command::Run(task) => {
                self.call_hook(handler, "a handle's task", |_, cx| task(cx));
            }
            Command::Notify(message) => {
                self.call_hook(handler, "on_notify", |h, cx| h.on_notify(cx, message));
            }
            Command::JobDone {
                conn,
                order,
                deliver,
            } => self.deliver_job(handler, conn, order, deliver),
        }
        self.run_close_hooks(handler);
    }

    fn undelivered(&mut self, conn: ConnId, what: &str) {
        self.stats.handle_undelivered += 1;
        debug!("{what} from a handle for {conn} dropped: it is closed");
    }

    fn deliver_job<H: Handler + ?Sized>(
        &mut self,
        handler: &mut H,
        conn: ConnId,
        order: Option<u64>,
        deliver: JobDelivery,
    ) {
        let Some(seq) = order else {
            self.deliver_one(handler, conn, deliver);
            return;
        };
        if !self.is_open(conn) {
            self.stats.jobs_dropped += 1;
            self.ordered.remove(&conn);
            return;
        }
        let results = self.ordered.entry(conn).or_default();
        results.waiting.insert(seq, deliver);
        // Deliver every result whose predecessors have all arrived.
        loop {
            let Some(results) = self.ordered.get_mut(&conn) else {
                return;
            };
            let next = results.next_deliver;
            let Some(deliver) = results.waiting.remove(&next) else {
                return;
            };
            results.next_deliver += 1;
            self.deliver_one(handler, conn, deliver);
        }
    }

    fn deliver_one<H: Handler + ?Sized>(
        &mut self,
        handler: &mut H,
        conn: ConnId,
        deliver: JobDelivery,
    ) {
        if !self.is_open(conn) {
            self.stats.jobs_dropped += 1;
            debug!("job result for {conn} dropped: it is closed");
            return;
        }
        self.stats.jobs_done += 1;
        if !self.call_hook(handler, "a job's completion", |_, cx| deliver(cx, conn)) {
            self.close(conn, CloseReason::HandlerPanic);
        }
        self.run_close_hooks(handler);
    }

    pub(crate) fn submit<T: Send + 'static>(
        &mut self,
        conn: ConnId,
        ordered: bool,
        work: impl FnOnce() -> T + Send + 'static,
        done: impl FnOnce(&mut Context<'_>, ConnId, T) + Send + 'static,
    ) -> Result<(), JobRejected> {
        if !self.is_open(conn) {
            return Err(JobRejected::Closed);
        }
        let shared = self.handle().map_err(|_| JobRejected::NoWorkers)?.shared;
        if self.workers.is_none() {
            let pool = WorkerPool::start(self.config.workers, self.config.job_queue)
                .map_err(|_| JobRejected::NoWorkers)?;
            self.workers = Some(pool);
        }
        let order = ordered.then(|| {
            let results = self.ordered.entry(conn).or_default();
            results.next_seq += 1;
            results.next_seq - 1
        });
        let job = Box::new(move || {
            // A panicking job still reports, so that ordered results behind
            // it are not held back forever.
            let deliver: JobDelivery = match panic::catch_unwind(AssertUnwindSafe(work)) {
                Ok(value) => Box::new(move |cx, conn| done(cx, conn, value)),
                Err(_) => Box::new(|_, conn| warn!("a job for {conn} panicked; no result")),
            };
            let _ = shared.push(Command::JobDone {
                conn,
                order,
                deliver,
            });
        });
        let submitted = match &self.workers {
            Some(pool) => pool.submit(job),
            None => Err(JobRejected::NoWorkers),
        };
        match submitted {
            Ok(()) => {
                self.stats.jobs_submitted += 1;
                Ok(())
            }
            Err(e) => {
                if order.is_some() {
                    // Nothing was queued: give the sequence number back.
                    if let Some(results) = self.ordered.get_mut(&conn) {
                        results.next_seq -= 1;
                    }
                }
                self.stats.jobs_rejected += 1;
                Err(e)
            }
        }
    }

    pub(crate) fn connect_tcp(&mut self, addr: SocketAddr) -> io::Result<ConnId> {
        let stream = mio::net::TcpStream::connect(addr)?;
        self.adopt_outbound(Stream::Tcp(stream))
    }

    pub(crate) fn connect_unix(&mut self, path: &Path) -> io::Result<ConnId> {
        let stream = mio::net::UnixStream::connect(path)?;
        self.adopt_outbound(Stream::Unix(stream))
    }

    fn adopt_outbound(&mut self, stream: Stream) -> io::Result<ConnId> {
        if self.open_connections >= self.max_connections.min(token::MAX_SLOTS) {
            return Err(io::Error::other(
                "connection cap (Config::max_connections) reached",
            ));
        }
        let id = self.insert_conn(stream, OUTBOUND, State::Connecting)?;
        let deadline = Instant::now() + self.config.connect_timeout;
        self.connect_deadlines.push(Reverse((deadline, id)));
        Ok(id)
    }

    /// A connecting socket reported writable (or an error): see how the
    /// connect went.
    fn finish_connect<H: Handler + ?Sized>(&mut self, handler: &mut H, id: ConnId) {
        let nodelay = self.config.nodelay;
        let Some(conn) = self.live(id) else { return };
        match conn.socket.take_error() {
            Ok(None) => {}
            Ok(Some(error)) | Err(error) => {
                self.close(id, CloseReason::ConnectFailed(error));
                self.run_close_hooks(handler);
                return;
            }
        }
        if !conn.socket.is_connected() {
            return; // a spurious wake-up: still connecting
        }
        conn.state = State::Open;
        conn.reading = true;
        if nodelay {
            conn.socket.set_nodelay();
        }
        let has_output = conn.has_output();
        self.inputs += 1;
        self.stats.connects += 1;
        self.update_interest(id);
        if has_output {
            self.queue_flush(id);
        }
        if !self.call_hook(handler, "on_connect", |h, cx| h.on_connect(cx, id)) {
            self.close(id, CloseReason::HandlerPanic);
        }
        self.run_close_hooks(handler);
    }

    /// Fails the connects that passed their deadline.
    fn expire_connects(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.connect_deadlines.peek().copied() {
            if at > now {
                return;
            }
            self.connect_deadlines.pop();
            if self.live(id).is_some_and(|c| c.state == State::Connecting) {
                let error = io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connect timed out (Config::connect_timeout)",
                );
                self.close(id, CloseReason::ConnectFailed(error));
            }
        }
    }

    pub(crate) fn origin(&self, id: ConnId) -> Option<Origin> {
        self.conns
            .get(id.slot())
            .filter(|c| c.id == id && c.state != State::Closed)
            .map(|c| match c.origin {
                OUTBOUND => Origin::Outbound,
                index => Origin::Accepted(ListenerId(index as usize)),
            })
    }

    pub(crate) fn pause_reading_by_handler(&mut self, id: ConnId) -> bool {
        let Some(conn) = self.live(id) else {
            return false;
        };
        conn.paused_by_handler = true;
        if conn.reading {
            conn.reading = false;
            self.inputs -= 1;
            self.update_interest(id);
        }
        true
    }

    pub(crate) fn resume_reading_by_handler(&mut self, id: ConnId) -> bool {
        let Some(conn) = self.live(id) else {
            return false;
        };
        conn.paused_by_handler = false;
        if !conn.reading && !conn.reading_paused && !conn.input_ended && conn.is_open() {
            conn.reading = true;
            self.inputs += 1;
            self.update_interest(id);
            // Bytes may be waiting with no edge to come for them.
            self.put_on_ready_list(id);
        }
        true
    }

    fn on_source<H: Handler + ?Sized>(
        &mut self,
        handler: &mut H,
        source: SourceId,
        event: Readiness,
    ) {
        let Some(entry) = self.sources.get_mut(source.0) else {
            return;
        };
        match entry.callback.take() {
            Some(mut callback) => {
                self.call_hook(handler, "a source callback", |_, cx| callback(cx, &event));
                // Put it back unless the callback deregistered its source.
                if let Some(entry) = self.sources.get_mut(source.0) {
                    entry.callback = Some(callback);
                }
            }
            None => {
                self.call_hook(handler, "on_source", |h, cx| {
                    h.on_source(cx, source, &event)
                });
            }
        }
        self.run_close_hooks(handler);
    }
}
