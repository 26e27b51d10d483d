//! The loop's state and the work of each phase. [`Reactor`](crate::Reactor)
//! sequences the phases; [`Core`] does them, and is what a
//! [`Context`](crate::Context) reaches into.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::io::{AsRawFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Token};
use slab::Slab;

use crate::backend::{Backend, Readiness};
use crate::buffer::BufferPool;
use crate::codec::FrameError;
use crate::config::Config;
use crate::conn::{Conn, Farewell, FlushEnd, QueueLimits, ReadEnd, State};
use crate::handler::{CloseReason, Closed, Context, Handler, SendError};
use crate::limits::{self, Limit, LimitLog};
use crate::stats::Stats;
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
    pub(crate) sources: Slab<RawFd>,
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
}

#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) socket: TcpListener,
    pub(crate) addr: SocketAddr,
    /// Deregistered until the accept back-off ends.
    paused: bool,
}

impl Listener {
    pub(crate) fn new(socket: TcpListener, addr: SocketAddr) -> Listener {
        Listener {
            socket,
            addr,
            paused: false,
        }
    }
}

/// The connection `id` names, if it is still the one in its slot and not
/// closed. A free function so that callers can borrow other fields of
/// [`Core`] alongside.
fn live_conn(conns: &mut Slab<Conn>, id: ConnId) -> Option<&mut Conn> {
    conns
        .get_mut(id.slot())
        .filter(|conn| conn.id == id && conn.state != State::Closed)
}

/// The peer's address for a log line. Asked of the kernel rather than kept in
/// every connection: it is needed only when something is worth logging.
fn peer_name(socket: &TcpStream) -> String {
    match socket.peer_addr() {
        Ok(addr) => addr.to_string(),
        Err(_) => String::from("peer unknown"),
    }
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
            conns: Slab::new(),
            generations: Vec::new(),
            listeners: Vec::new(),
            sources: Slab::new(),
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
            config,
        }
    }

    /// The reactor's clock in milliseconds, never 0 (0 means "unset").
    fn now_ms(&self) -> u64 {
        self.now.saturating_duration_since(self.epoch).as_millis() as u64 + 1
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
            TokenKind::Source(source) => {
                if self.sources.contains(source.0) {
                    self.call_hook(handler, "on_source", |h, cx| {
                        h.on_source(cx, source, &event)
                    });
                    self.run_close_hooks(handler);
                }
            }
            // Reserved for the cross-thread waker.
            TokenKind::Waker => {}
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
                Ok((stream, peer)) => self.adopt(handler, stream, peer),
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
                    let addr = entry.addr;
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
                    debug!("pausing listener {}: {e}", listener.addr);
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
                    warn!("cannot re-arm listener {}: {e}", listener.addr);
                    self.accept_resume_at = Some(Instant::now() + self.config.accept_backoff);
                }
            }
        }
    }

    /// Inserts an accepted connection: `inputs.append(conn)` and the greeting.
    fn adopt<H: Handler + ?Sized>(&mut self, handler: &mut H, stream: TcpStream, peer: SocketAddr) {
        if self.open_connections >= self.max_connections.min(token::MAX_SLOTS) {
            self.reject(stream, peer);
            return;
        }
        if self.config.nodelay {
            // Only latency is at stake: a failure is not worth dropping the client.
            let _ = stream.set_nodelay(true);
        }
        let now_ms = self.now_ms();
        let entry = self.conns.vacant_entry();
        let slot = entry.key();
        if slot >= self.generations.len() {
            self.generations.resize(slot + 1, 0);
        }
        let generation = ConnId::next_generation(self.generations[slot]);
        let id = ConnId::new(slot, generation);
        // Register before inserting: a failure leaves nothing behind (the
        // vacant entry and the stream are simply dropped).
        if let Err(e) = self
            .backend
            .add(stream.as_raw_fd(), id.token(), Interest::READABLE)
        {
            warn!("connection from {peer} dropped: cannot register it: {e}");
            return;
        }
        self.generations[slot] = generation;
        let mut conn = Conn::new(stream, id);
        conn.interest = Some(Interest::READABLE);
        conn.last_message_ms = now_ms;
        entry.insert(conn);
        self.open_connections += 1;
        self.inputs += 1;
        self.stats.accepted += 1;
        trace!("{id} accepted from {peer}");
        if !self.call_hook(handler, "on_connect", |h, cx| h.on_connect(cx, id)) {
            self.close(id, CloseReason::HandlerPanic);
        }
        self.run_close_hooks(handler);
    }

    /// Over the cap: a best-effort farewell, then the socket is dropped.
    fn reject(&mut self, stream: TcpStream, peer: SocketAddr) {
        self.stats.rejected += 1;
        if let Some(message) = &self.config.reject_message {
            // Never waited for: a fresh socket's buffer takes a short line.
            let _ = (&stream).write(message);
        }
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
        let mut list = std::mem::take(&mut self.to_flush);
        for id in list.drain(..) {
            let Some(conn) = live_conn(&mut self.conns, id) else {
                continue;
            };
            conn.queued_for_flush = false;
            let (bytes, end) = conn.flush(&mut self.pool);
            self.stats.bytes_written += bytes as u64;
            let resume_handling = conn.handling_paused && conn.output_len() <= low;
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
                debug!("stopped listening on {}", listener.addr);
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
        };
        *counter += 1;
        match &reason {
            CloseReason::FrameTooLong(_)
            | CloseReason::Error(_)
            | CloseReason::HandlerPanic
            | CloseReason::OutputLimit => {
                warn!("{id} ({}) closed: {reason}", peer_name(socket))
            }
            _ => debug!("{id} ({}) closed: {reason}", peer_name(socket)),
        }
        self.close_hooks.push_back((id, reason));
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
        let Some(conn) = live_conn(&mut self.conns, id).filter(|c| c.is_open()) else {
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
            .and_then(|c| c.socket.peer_addr().ok())
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

    pub(crate) fn source_id_valid(&self, id: SourceId) -> bool {
        self.sources.contains(id.0)
    }
}
