//! The loop's state, and what a [`Context`](crate::Context) asks of it.
//!
//! `Core` holds the parts (the connection table, the listeners, the
//! schedule, the remote side, the sources), the backend, and what belongs
//! to the turn itself: its lists, the close hooks, the clock, the stats.
//! [`Reactor`](crate::Reactor) sequences the phases of a turn; the work of
//! each phase lives in a file of its own in this folder, each an `impl
//! Core` block:
//!
//! | File | Concern |
//! |---|---|
//! | `accept.rs` | phase 4: listeners bound, accepting, pause or shed, reject over the cap |
//! | `conn_io.rs` | phases 3 to 7 for connections: route an event, read, handle, flush, interest |
//! | `hooks.rs` | calling the handler: panics caught, close hooks queued |
//! | `remote.rs` | commands from other threads through a [`Handle`](crate::Handle) |
//! | `jobs.rs` | the worker pool and its results, in order when asked |
//! | `connect.rs` | outbound connects: non-blocking, `SO_ERROR`, deadlines |
//! | `sources.rs` | the embedder's own descriptors |
//! | `timeouts.rs` | phase 8's own timers: back-offs, connects, lingering, the sweep |
//! | `linger.rs` | lingering closes |
//! | `shutdown.rs` | graceful shutdown |
//!
//! This file keeps closing a connection and sending.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::sources::SourceCallback;
use super::timeouts::TimerPayload;
use crate::backend::{Backend, Streams};
use crate::close::{CloseReason, Closed, Origin, SendError};
use crate::codec::{FrameError, TypeTag};
use crate::config::{Config, EmfilePolicy};
use crate::conn::{
    Backlog, BufferPool, ConnTable, Deferred, Farewell, Lifecycle, Outgoing, ReadLimits,
    WriteEvent, Writing, ADOPTED, OUTBOUND,
};
use crate::handle::{Command, JobDelivery};
use crate::limits::{self, Limit, LimitLog, Timeouts};
use crate::listen::{Listeners, Reserve};
use crate::remote::{Jobs, Remote};
use crate::schedule::{
    deadline_after, ConnectDeadlines, LingerDeadlines, Sweeper, TimerId, Timers,
};
use crate::sources::{RecvBatch, SignalPipe, Sources};
use crate::stats::Stats;
use crate::token::{ConnId, ListenerId, SourceId, Token};

/// Everything but the handler and the event batch: what a `Context` reaches.
pub(crate) struct Core {
    pub(crate) backend: Box<dyn Backend>,
    /// With io_uring: the table through which accepted connections are
    /// served by completions (the backend's other half).
    pub(crate) streams: Option<Streams>,
    pub(crate) config: Config,
    /// From `config`: how connections read and frame.
    pub(crate) read_limits: ReadLimits,
    /// The connections: the Python server's `inputs` (minus the listener)
    /// and its `message` dict, in one table.
    pub(crate) conns: ConnTable,
    pub(crate) listeners: Listeners,
    pub(crate) sources: Sources<SourceCallback>,
    /// Where datagrams are read, whole, before they go to the handler
    /// (allocated with the first datagram socket's first read).
    pub(crate) datagram_batch: Option<RecvBatch>,
    /// The handler type the sources' callbacks that take the handler were
    /// registered for (`register_source_with_handler`): the loop must run
    /// one of it while any of them is registered.
    pub(crate) source_handler: Option<TypeTag>,
    /// The source whose callback (or `on_source`) is running.
    pub(crate) current_source: Option<SourceId>,
    /// The pipe the signals caught wake the loop through, and its source.
    pub(crate) signals: Option<(SignalPipe, SourceId)>,
    /// Commands from other threads, and the shared half every handle holds.
    pub(crate) remote: Option<Remote<Command>>,
    pub(crate) jobs: Jobs<JobDelivery>,
    /// The spare descriptor [`EmfilePolicy::Shed`] accepts with.
    pub(crate) reserve: Reserve,
    pub(crate) connects: ConnectDeadlines,
    /// Connections in a lingering close, by deadline.
    pub(crate) lingering: LingerDeadlines,
    pub(crate) sweeper: Sweeper,
    pub(crate) timers: Timers<TimerPayload>,
    pub(crate) pool: BufferPool,
    /// Sockets that must be served next turn without waiting for an event:
    /// they spent their budget, and edge-triggered polling would not report
    /// them again.
    pub(crate) ready: Deferred<Token>,
    /// Connections with inbound messages to hand to the handler this turn.
    pub(crate) to_handle: Deferred<ConnId>,
    /// Connections with output to write this turn.
    pub(crate) to_flush: Deferred<ConnId>,
    /// Connections that spent their write budget: flushed next turn, not
    /// again in this one (phase 7 runs twice a turn).
    pub(crate) flush_next: Deferred<ConnId>,
    /// Close hooks not yet run: closing happens in places (inside another
    /// hook, say) where the handler cannot be called back at once.
    pub(crate) close_hooks: VecDeque<(ConnId, CloseReason)>,
    pub(crate) stop_requested: bool,
    /// Set by a handle's `shutdown`: `run` shuts down gracefully and returns.
    pub(crate) shutdown_requested: Option<Duration>,
    /// Set by a graceful shutdown: no accepting, connections close once drained.
    pub(crate) shutting_down: bool,
    /// A turn is being dispatched. Still set when a turn begins, it means a
    /// panic unwound out of the last one (with `catch_panics(false)`) and
    /// the deferred lists it held are lost.
    pub(crate) in_turn: bool,
    /// The connection cap in force (the configured one, fitted under the
    /// descriptor limit).
    pub(crate) max_connections: usize,
    limit_log: LimitLog,
    pub(crate) stats: Stats,
    /// When this turn woke up.
    pub(crate) now: Instant,
    /// The same, on the millisecond clock kept in connections (never 0:
    /// 0 means "unset" in a connection's stamps).
    pub(crate) now_ms: u64,
    /// Origin of the millisecond clock.
    epoch: Instant,
}

/// Slots reserved when the reactor starts (at most): 65,536 connections'
/// worth of address space, touched only as connections arrive.
const PREALLOCATED_SLOTS: usize = 65_536;

impl Core {
    pub(crate) fn new(config: Config, backend: Box<dyn Backend>) -> Core {
        let now = Instant::now();
        let max_connections =
            limits::effective_max_connections(config.max_connections, config.fd_reserve);
        Core {
            backend,
            streams: None,
            pool: BufferPool::new(config.pooled_buffers),
            // Reserved up front for the connection cap, so that growing the
            // table never copies it and leaves the old copy's pages resident.
            conns: ConnTable::with_capacity(max_connections.min(PREALLOCATED_SLOTS)),
            listeners: Listeners::default(),
            reserve: match config.emfile_policy {
                EmfilePolicy::Shed => Reserve::new(),
                EmfilePolicy::Pause => Reserve::none(),
            },
            sources: Sources::default(),
            signals: None,
            source_handler: None,
            current_source: None,
            datagram_batch: None,
            remote: None,
            jobs: Jobs::default(),
            connects: ConnectDeadlines::default(),
            lingering: LingerDeadlines::default(),
            sweeper: Sweeper::new(&config, now),
            timers: Timers::default(),
            ready: Deferred::default(),
            to_handle: Deferred::default(),
            to_flush: Deferred::default(),
            flush_next: Deferred::default(),
            close_hooks: VecDeque::new(),
            stop_requested: false,
            shutdown_requested: None,
            shutting_down: false,
            in_turn: false,
            max_connections,
            limit_log: LimitLog::default(),
            stats: Stats::default(),
            now,
            now_ms: 1,
            epoch: now,
            read_limits: Core::read_limits_of(&config),
            config,
        }
    }

    /// Starts a turn: reads the clock once for everything the turn stamps.
    pub(crate) fn begin_turn(&mut self) {
        self.now = Instant::now();
        self.now_ms = self.now.saturating_duration_since(self.epoch).as_millis() as u64 + 1;
    }

    /// The configuration's read rules, gathered once for the hot path.
    fn read_limits_of(config: &Config) -> ReadLimits {
        let custom = config.custom_framing.as_ref();
        ReadLimits {
            messages: config.max_inbound_messages,
            bytes: config.max_inbound_bytes,
            min_read: config.read_buffer_size,
            max_message: custom.map_or(config.codec.max_message(), |c| c.max_message),
        }
    }

    /// The seed's `len(inputs)`: listeners accepting, connections reading.
    pub(crate) fn inputs(&self) -> usize {
        self.listeners.accepting() + self.conns.inputs()
    }

    /// Logs that `limit` was hit, at most once a second per limit.
    pub(crate) fn limit_hit(&mut self, limit: Limit, detail: std::fmt::Arguments<'_>) {
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

    /// Whether the last turn left work that must not wait for an event:
    /// sockets that spent their read budget, output to flush, messages to
    /// handle, close hooks to run.
    pub(crate) fn work_left(&self) -> bool {
        !self.ready.is_empty()
            || !self.to_flush.is_empty()
            || !self.flush_next.is_empty()
            || !self.to_handle.is_empty()
            || !self.close_hooks.is_empty()
    }

    /// Phase 1: zero if work is left from the last turn, else up to the
    /// next deadline (timers, the loop's own), capped by the caller's.
    pub(crate) fn poll_timeout(&mut self, caller: Option<Duration>) -> Option<Duration> {
        if self.work_left() {
            return Some(Duration::ZERO);
        }
        let next = [
            self.timers.next_deadline(),
            self.listeners.resume_at(),
            self.sweeper.next_at(),
            self.connects.next_at(),
            self.lingering.next_at(),
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

    /// Closes a connection at once: out of `inputs` and `outputs`,
    /// deregistered, buffers returned, its close hook queued. The socket
    /// itself is dropped with the slot at the end of the turn. Returns
    /// `false` if it was already closed.
    pub(crate) fn close(&mut self, id: ConnId, reason: CloseReason) -> bool {
        let Some(conn) = self.conns.close(id) else {
            return false;
        };
        if conn.take_interest().is_some() {
            if let Err(e) = self.backend.delete(conn.socket().raw_source()) {
                debug!("{id}: deregister failed: {e}");
            }
        }
        conn.discard_input(&mut self.pool);
        conn.discard_output(&mut self.pool);
        let peer = conn.socket().peer();
        self.stats.count_close(&reason);
        match &reason {
            CloseReason::FrameTooLong(_)
            | CloseReason::Error(_)
            | CloseReason::ProtocolError(_)
            | CloseReason::HandlerPanic
            | CloseReason::OutputLimit => warn!("{id} ({peer}) closed: {reason}"),
            _ => debug!("{id} ({peer}) closed: {reason}"),
        }
        self.close_hooks.push_back((id, reason));
        self.jobs.forget(id);
        self.connects.remove(id);
        // A descriptor was freed: a listener paused for lack of them may
        // try again now rather than at the end of its back-off.
        if !self.shutting_down {
            self.listeners.resume_early(self.now);
        }
        true
    }

    // ----- what a Context does -----

    pub(crate) fn send(&mut self, id: ConnId, parts: &[&[u8]]) -> Result<(), Closed> {
        self.queue_output(id, Outgoing::Copies(parts))
    }

    /// Queues a shared buffer for `id` without copying it.
    pub(crate) fn send_shared(&mut self, id: ConnId, bytes: bytes::Bytes) -> Result<(), Closed> {
        self.queue_output(id, Outgoing::Shared(bytes))
    }

    /// Queues output for an open connection, under the output limit (past
    /// it, the connection closes), and lists it for the flush.
    fn queue_output(&mut self, id: ConnId, out: Outgoing<'_>) -> Result<(), Closed> {
        let max_output = self.config.max_output;
        let high = self.config.output_high_watermark;
        // Bytes for a connection still connecting wait for it to open.
        let Some(conn) = self
            .conns
            .get_mut(id)
            .filter(|c| c.state().lifecycle().accepts_output())
        else {
            return Err(Closed(id));
        };
        let turn = self.stats.turns as u32; // wraps: compared for equality
        let adding = out.len();
        if let Err(Backlog(backlog)) =
            conn.queue_output(out, &mut self.pool, turn, max_output, high)
        {
            self.limit_hit(
                Limit::MaxOutput,
                format_args!(
                    "{id} has {backlog} bytes unread, past {max_output}; {adding} more refused"
                ),
            );
            self.close(id, CloseReason::OutputLimit);
            return Err(Closed(id));
        }
        self.stats.messages_out += 1;
        if self.conns.write_event(id, WriteEvent::Queued) == Some(Writing::Queued) {
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

    pub(crate) fn set_idle_timeout(&mut self, id: ConnId, timeout: Option<Duration>) -> bool {
        self.set_timeouts(id, |t| t.idle_ms = Timeouts::ms(timeout))
    }

    pub(crate) fn set_message_deadline(&mut self, id: ConnId, deadline: Option<Duration>) -> bool {
        self.set_timeouts(id, |t| t.message_ms = Timeouts::ms(deadline))
    }

    /// Changes the timeouts of a connection open or connecting; `false` if
    /// it is gone or closing.
    fn set_timeouts(&mut self, id: ConnId, change: impl FnOnce(&mut Timeouts)) -> bool {
        let Some(conn) = self
            .conns
            .get_mut(id)
            .filter(|c| c.state().lifecycle().accepts_output())
        else {
            return false;
        };
        let Timeouts {
            idle_ms,
            message_ms,
        } = conn.change_timeouts(change);
        for ms in [idle_ms, message_ms].into_iter().filter(|&ms| ms > 0) {
            self.sweeper
                .cover(Duration::from_millis(u64::from(ms)), self.now);
        }
        true
    }

    /// Closes once the output queued is written; at once if there is none.
    pub(crate) fn close_after_flush(&mut self, id: ConnId) -> bool {
        let Some(conn) = self.conns.get_mut(id) else {
            return false;
        };
        if !conn.has_output() {
            return self.close(id, CloseReason::ClosedByHandler);
        }
        match conn.state().lifecycle() {
            Lifecycle::Open => {
                conn.discard_input(&mut self.pool);
                self.conns
                    .set_lifecycle(id, Lifecycle::Closing(Farewell::ByHandler));
                // Reads nothing more: READABLE goes, so that a level-triggered
                // backend does not report input it will never take.
                self.update_interest(id);
            }
            // Its output goes once the connect completes, then it closes.
            Lifecycle::Connecting { .. } => {
                self.conns
                    .set_lifecycle(id, Lifecycle::Connecting { then_close: true });
            }
            Lifecycle::Closing(_) | Lifecycle::Lingering(_) | Lifecycle::Closed => {}
        }
        true
    }

    pub(crate) fn is_open(&self, id: ConnId) -> bool {
        self.conns.get(id).is_some_and(|c| c.is_open())
    }

    pub(crate) fn peer_addr(&self, id: ConnId) -> Option<SocketAddr> {
        self.conns.get(id).and_then(|c| c.socket().peer_addr())
    }

    pub(crate) fn pending_output(&self, id: ConnId) -> usize {
        self.conns.get(id).map_or(0, |c| c.output_len())
    }

    pub(crate) fn origin(&self, id: ConnId) -> Option<Origin> {
        self.conns.get(id).map(|c| match c.origin() {
            OUTBOUND => Origin::Outbound,
            ADOPTED => Origin::Adopted,
            index => Origin::Accepted(ListenerId(index as usize)),
        })
    }

    pub(crate) fn set_timer(
        &mut self,
        after: Duration,
        period: Option<Duration>,
        payload: Option<TimerPayload>,
    ) -> TimerId {
        // From the real now, not the turn's: a deadline computed from an
        // earlier instant could fire before `after` has passed.
        let deadline = deadline_after(Instant::now(), after);
        self.timers.insert_with(deadline, period, payload)
    }
}
