//! The event loop: one [`Reactor`] owns the poller, every socket, the
//! connections' queues and the timers, and [`Reactor::run_once`] walks the nine
//! phases of one turn described in the [crate docs](crate#one-turn-of-the-loop).

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener, ToSocketAddrs};
use std::os::unix::io::AsRawFd;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Token};
use slab::Slab;
use socket2::{Domain, Protocol, Socket, Type};

use crate::backend::{Backend, MioBackend, Readiness};
use crate::buffer::BufferPool;
use crate::config::Config;
use crate::conn::{Conn, Farewell, FlushEnd, ReadEnd, State};
use crate::handler::{CloseReason, Closed, Context, Handler, SendError};
use crate::stats::Stats;
use crate::timer::{TimerId, Timers};
use crate::token::{self, ConnId, ListenerId, TokenKind};

/// A single-threaded event loop serving TCP connections.
///
/// Create one, [`listen`](Reactor::listen) on one or more addresses, then
/// [`run`](Reactor::run) it with a [`Handler`].
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use selectloop::{Config, Context, ConnId, Reactor};
/// use selectloop::codec::Lines;
///
/// let mut reactor = Reactor::with_config(Config::new().codec(Lines::new(1024)))?;
/// let listener = reactor.listen("127.0.0.1:0")?;
/// let addr = reactor.local_addr(listener).unwrap();
///
/// // Echo each line back, then stop the loop.
/// let mut handler = |cx: &mut Context<'_>, conn: ConnId, line: &[u8]| {
///     let _ = cx.send_frame(conn, line);
///     cx.stop();
/// };
///
/// let mut client = std::net::TcpStream::connect(addr)?;
/// client.write_all(b"hello\n")?;
/// reactor.run(&mut handler)?;
///
/// let mut answer = [0; 6];
/// client.read_exact(&mut answer)?;
/// assert_eq!(&answer, b"hello\n");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Reactor {
    core: Core,
    /// The batch of events of this turn; its allocation is reused.
    events: Vec<Readiness>,
    /// Timers due this turn; allocation reused.
    due_timers: Vec<TimerId>,
}

/// Everything but the handler and the event batch: what a [`Context`] reaches.
pub(crate) struct Core {
    backend: Box<dyn Backend>,
    config: Config,
    /// The connections, by slot; the Python server's `inputs` minus the listener,
    /// and its `message` dict, in one table.
    conns: Slab<Conn>,
    /// The generation each slot last handed out; outlives the connections.
    generations: Vec<u32>,
    listeners: Vec<Listener>,
    pub(crate) timers: Timers,
    pool: BufferPool,
    /// Sockets that spent their budget and must be served next turn without
    /// waiting for an event (edge-triggered polling would not report them).
    ready: Vec<Token>,
    /// Connections with inbound messages to hand to the handler this turn.
    to_handle: Vec<ConnId>,
    /// Connections with output to write this turn.
    to_flush: Vec<ConnId>,
    /// Slots of connections closed this turn, freed at its end.
    to_free: Vec<usize>,
    /// Close hooks not yet run: closing happens in places (inside another
    /// hook, say) where the handler cannot be called back at once.
    close_hooks: VecDeque<(ConnId, CloseReason)>,
    pub(crate) stop_requested: bool,
    pub(crate) open_connections: usize,
    /// Sockets whose READABLE events are acted on: `len(inputs)`.
    inputs: usize,
    /// Connections waiting for WRITABLE: `len(outputs)`.
    outputs: usize,
    pub(crate) stats: Stats,
    /// When this turn woke up.
    pub(crate) now: Instant,
}

#[derive(Debug)]
struct Listener {
    socket: TcpListener,
    addr: SocketAddr,
}

/// The two of the seed's four figures that belong to one batch of events
/// (`len(rlist)`, `len(wlist)`); the other two are kept in [`Core`].
#[derive(Default)]
struct TurnFigures {
    readable: usize,
    writable: usize,
}

impl TurnFigures {
    fn count(&mut self, event: &Readiness) {
        self.readable += usize::from(event.readable);
        self.writable += usize::from(event.writable);
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

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("backend", &self.core.backend.name())
            .field("listeners", &self.core.listeners.len())
            .field("connections", &self.core.open_connections)
            .field("timers", &self.core.timers.len())
            .finish()
    }
}

impl Reactor {
    /// A reactor with the default [`Config`] and backend.
    ///
    /// # Errors
    ///
    /// The system refused to create the poller.
    pub fn new() -> io::Result<Reactor> {
        Reactor::with_config(Config::default())
    }

    /// A reactor with `config` and the default backend ([`MioBackend`]).
    ///
    /// # Errors
    ///
    /// The system refused to create the poller.
    pub fn with_config(config: Config) -> io::Result<Reactor> {
        let backend = MioBackend::new(config.events_capacity)?;
        Ok(Reactor::with_backend(config, Box::new(backend)))
    }

    /// A reactor with `config` polling through `backend`.
    pub fn with_backend(config: Config, backend: Box<dyn Backend>) -> Reactor {
        let pool = BufferPool::new(config.pooled_buffers, config.read_buffer_size);
        Reactor {
            core: Core {
                backend,
                conns: Slab::new(),
                generations: Vec::new(),
                listeners: Vec::new(),
                timers: Timers::default(),
                pool,
                ready: Vec::new(),
                to_handle: Vec::new(),
                to_flush: Vec::new(),
                to_free: Vec::new(),
                close_hooks: VecDeque::new(),
                stop_requested: false,
                open_connections: 0,
                inputs: 0,
                outputs: 0,
                stats: Stats::default(),
                now: Instant::now(),
                config,
            },
            events: Vec::new(),
            due_timers: Vec::new(),
        }
    }

    /// Binds a TCP listener on `addr` and starts accepting on it.
    ///
    /// The socket gets `SO_REUSEADDR` (a restarted server can bind at once)
    /// and the configured backlog. Port 0 picks a free port: read it back with
    /// [`local_addr`](Reactor::local_addr). Several listeners may be added.
    /// If `addr` resolves to several addresses, the first that binds is used.
    ///
    /// # Errors
    ///
    /// The address did not resolve, or no resolved address could be bound
    /// (in use, not permitted), or the poller refused it.
    pub fn listen(&mut self, addr: impl ToSocketAddrs) -> io::Result<ListenerId> {
        let mut last_error = None;
        for addr in addr.to_socket_addrs()? {
            match bind(addr, self.core.config.backlog) {
                Ok(listener) => return self.add_listener(listener),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "address resolved to nothing")
        }))
    }

    /// Accepts on a listener bound elsewhere (inherited from a supervisor,
    /// say). It is switched to non-blocking mode.
    ///
    /// # Errors
    ///
    /// The socket has no local address, or the poller refused it.
    pub fn add_listener(&mut self, listener: StdListener) -> io::Result<ListenerId> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let socket = TcpListener::from_std(listener);
        let id = ListenerId(self.core.listeners.len());
        self.core.backend.add(
            socket.as_raw_fd(),
            token::listener_token(id),
            Interest::READABLE,
        )?;
        self.core.listeners.push(Listener { socket, addr });
        self.core.inputs += 1;
        debug!("listening on {addr} ({})", self.core.backend.name());
        Ok(id)
    }

    /// The address a listener is bound to (with the real port if 0 was asked).
    pub fn local_addr(&self, listener: ListenerId) -> Option<SocketAddr> {
        self.core.listeners.get(listener.0).map(|l| l.addr)
    }

    /// Runs turns until a handler calls [`Context::stop`].
    ///
    /// # Errors
    ///
    /// Only a failure of the poller itself; errors on single connections close
    /// those connections and are reported to [`Handler::on_close`].
    pub fn run<H: Handler + ?Sized>(&mut self, handler: &mut H) -> io::Result<()> {
        while !self.core.stop_requested {
            self.run_once(handler, None)?;
        }
        self.core.stop_requested = false;
        Ok(())
    }

    /// Runs one turn of the loop, waiting at most `timeout` for events
    /// (`None`: until an event or the next timer; `Some(Duration::ZERO)`:
    /// not at all).
    ///
    /// The phases, numbered as in the [crate docs](crate#one-turn-of-the-loop):
    ///
    /// # Errors
    ///
    /// Only a failure of the poller itself.
    pub fn run_once<H: Handler + ?Sized>(
        &mut self,
        handler: &mut H,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        // 1. Timeout: zero if work is left from the last turn, else up to the
        //    next timer (the seed always waits 1 s, due or not).
        let timeout = self.core.poll_timeout(timeout);

        // 2. Poll: `select.select(inputs, outputs, [], timeout)`.
        let mut events = std::mem::take(&mut self.events);
        let polled = self.core.backend.poll(&mut events, timeout);
        if polled.is_ok() {
            self.dispatch(handler, &events);
        }
        self.events = events;
        polled
    }

    /// Phases 3 to 9 of a turn, on a batch of events. `run_once` calls it with
    /// what the poller returned; tests call it with a batch built by hand.
    pub(crate) fn dispatch<H: Handler + ?Sized>(&mut self, handler: &mut H, events: &[Readiness]) {
        let core = &mut self.core;
        core.now = Instant::now();
        core.stats.turns += 1;
        core.stats.events += events.len() as u64;
        let mut figures = TurnFigures::default();

        // 3-5, first for the sockets left ready by the last turn's budgets:
        //    they have waited longest.
        let mut ready = std::mem::take(&mut core.ready);
        for token in ready.drain(..) {
            // A connection closed since it was put on the list is simply
            // dropped from it: that is not a stale event from the kernel.
            if let TokenKind::Conn(id) = token::decode(token) {
                if core.live(id).is_none() {
                    continue;
                }
            }
            core.on_event(handler, Readiness::readable(token));
        }
        if core.ready.is_empty() {
            core.ready = ready; // keep the allocation
        }

        // 3. For each event, look the token up (stale ones are counted and
        //    dropped), then 4. accept on listeners or 5. read connections.
        for &event in events {
            figures.count(&event);
            core.on_event(handler, event);
        }

        // 6. Handle inbound messages, in order, for each connection that has some.
        core.handle_inbound(handler);

        // 7. Flush: write what the handlers queued, at once.
        core.flush(handler);

        // 8. Fire due timers, then flush what their hooks queued.
        let mut due = std::mem::take(&mut self.due_timers);
        core.timers.collect_due(Instant::now(), &mut due);
        for timer in due.drain(..) {
            if core.timers.fire(timer) {
                core.stats.timers_fired += 1;
                handler.on_timer(&mut Context { core: &mut *core }, timer);
                core.run_close_hooks(handler);
            }
        }
        self.due_timers = due;
        core.flush(handler);

        // 9. Free the slots of connections closed this turn: only now can no
        //    event of this batch still name them.
        for slot in core.to_free.drain(..) {
            core.conns.remove(slot);
        }
        trace!(
            "turn: inputs {} readable {} writable {} outputs {}",
            core.inputs,
            figures.readable,
            figures.writable,
            core.outputs
        );
    }

    /// A context for acting on the loop from outside a hook: to set a timer
    /// before the first turn, say. Close hooks it causes run during the next
    /// turn.
    pub fn context(&mut self) -> Context<'_> {
        Context {
            core: &mut self.core,
        }
    }

    /// The loop's counters.
    pub fn stats(&self) -> Stats {
        self.core.stats
    }

    /// Connections open now.
    pub fn connection_count(&self) -> usize {
        self.core.open_connections
    }

    /// The backend's name (`"epoll"`, `"kqueue"`).
    pub fn backend_name(&self) -> &'static str {
        self.core.backend.name()
    }

    /// Heap bytes held by open connections: their slab slots and buffers.
    /// An idle connection holds no buffer, only its slot.
    pub fn connection_heap_bytes(&self) -> usize {
        // A slab entry is the connection plus at most a word of tag.
        let slot = std::mem::size_of::<Conn>() + std::mem::size_of::<usize>();
        self.core.conns.capacity() * slot
            + self
                .core
                .conns
                .iter()
                .map(|(_, conn)| conn.heap_bytes())
                .sum::<usize>()
    }
}

/// The peer's address for a log line. Asked of the kernel rather than kept in
/// every connection: it is needed only when something is worth logging.
fn peer_name(socket: &TcpStream) -> String {
    match socket.peer_addr() {
        Ok(addr) => addr.to_string(),
        Err(_) => String::from("peer unknown"),
    }
}

fn bind(addr: SocketAddr, backlog: i32) -> io::Result<StdListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

impl Core {
    fn poll_timeout(&mut self, caller: Option<Duration>) -> Option<Duration> {
        if !self.ready.is_empty()
            || !self.to_flush.is_empty()
            || !self.to_handle.is_empty()
            || !self.close_hooks.is_empty()
        {
            return Some(Duration::ZERO);
        }
        match self.timers.next_deadline() {
            Some(deadline) => {
                let until = deadline.saturating_duration_since(Instant::now());
                Some(caller.map_or(until, |c| c.min(until)))
            }
            None => caller,
        }
    }

    fn live(&mut self, id: ConnId) -> Option<&mut Conn> {
        live_conn(&mut self.conns, id)
    }

    fn on_event<H: Handler + ?Sized>(&mut self, handler: &mut H, event: Readiness) {
        match token::decode(event.token) {
            TokenKind::Listener(listener) => {
                if event.readable {
                    self.accept(handler, listener);
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
            let Some(entry) = self.listeners.get(listener.0) else {
                return;
            };
            match entry.socket.accept() {
                Ok((stream, peer)) => self.adopt(handler, stream, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // The client gave up before we got to it, or a signal: next.
                Err(e)
                    if e.kind() == io::ErrorKind::Interrupted
                        || e.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(e) => {
                    self.stats.accept_errors += 1;
                    warn!("accept on {} failed: {e}", entry.addr);
                    return;
                }
            }
        }
        // More may be queued, and no new edge will say so.
        self.stats.budget_exhausted += 1;
        self.ready.push(token::listener_token(listener));
    }

    /// Inserts an accepted connection: `inputs.append(conn)` and the greeting.
    fn adopt<H: Handler + ?Sized>(&mut self, handler: &mut H, stream: TcpStream, peer: SocketAddr) {
        if self.conns.len() >= token::MAX_SLOTS {
            warn!(
                "connection from {peer} refused: {} slots in use",
                self.conns.len()
            );
            return;
        }
        if self.config.nodelay {
            // Only latency is at stake: a failure is not worth dropping the client.
            let _ = stream.set_nodelay(true);
        }
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
        entry.insert(conn);
        self.open_connections += 1;
        self.inputs += 1;
        self.stats.accepted += 1;
        trace!("{id} accepted from {peer}");
        handler.on_connect(&mut Context { core: self }, id);
        self.run_close_hooks(handler);
    }

    /// Phase 5: read what the socket has, within the byte budget.
    fn read(&mut self, id: ConnId, peer_closed: bool) {
        let budget = self.config.read_budget;
        let codec = self.config.codec;
        let Some(conn) = live_conn(&mut self.conns, id) else {
            return;
        };
        let (bytes, end) = conn.read_frames(&codec, budget, peer_closed, &mut self.pool);
        self.stats.bytes_read += bytes as u64;
        let has_frames = !conn.frames.is_empty();
        match end {
            ReadEnd::Drained => {}
            ReadEnd::BudgetSpent => {
                self.stats.budget_exhausted += 1;
                self.ready.push(id.token());
            }
            ReadEnd::EndOfInput => {
                // Half-close: the peer sends nothing more but may still read.
                // Answer what it sent, then close (phase 6 decides when).
                conn.reading = false;
                self.inputs -= 1;
                self.queue_handling(id);
            }
            ReadEnd::TooLong(e) => {
                self.stats.frames_too_long += 1;
                self.close(id, CloseReason::FrameTooLong(e));
                return;
            }
            ReadEnd::Failed(e) => {
                self.close(id, CloseReason::from_io(e));
                return;
            }
        }
        if has_frames {
            self.queue_handling(id);
        }
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

    /// Phase 6: hand each queued message to the handler, oldest first (the
    /// seed's `message[w].pop()` takes the newest).
    fn handle_inbound<H: Handler + ?Sized>(&mut self, handler: &mut H) {
        let mut list = std::mem::take(&mut self.to_handle);
        for id in list.drain(..) {
            let Some(conn) = self.live(id) else { continue };
            conn.queued_for_handling = false;
            // The handler may send to any connection, this one included, so
            // the message bytes are lent out of the connection meanwhile.
            let buf = conn.take_inbuf();
            let mut consumed = 0;
            // Stop as soon as the connection closes or starts closing: what it
            // sent after that is not answered.
            while let Some(frame) = self
                .live(id)
                .filter(|c| c.is_open())
                .and_then(|c| c.frames.pop_front())
            {
                consumed = frame.next as usize;
                self.stats.messages += 1;
                let msg = &buf[frame.start as usize..frame.end as usize];
                handler.on_message(&mut Context { core: self }, id, msg);
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

    /// A connection whose input ended closes once its answers are written.
    fn after_handling(&mut self, id: ConnId) {
        let Some(conn) = self.live(id) else { return };
        if conn.input_ended && conn.is_open() {
            if conn.has_output() {
                conn.state = State::Closing(Farewell::PeerClosed);
                self.queue_flush(id);
            } else {
                self.close(id, CloseReason::PeerClosed);
            }
        }
    }

    /// Phase 7: write queued output right away; only a write that would block
    /// puts the connection in the writable set (and costs an `epoll_ctl`).
    fn flush<H: Handler + ?Sized>(&mut self, handler: &mut H) {
        let mut list = std::mem::take(&mut self.to_flush);
        for id in list.drain(..) {
            let Some(conn) = live_conn(&mut self.conns, id) else {
                continue;
            };
            conn.queued_for_flush = false;
            let (bytes, end) = conn.flush(&mut self.pool);
            self.stats.bytes_written += bytes as u64;
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
        match &reason {
            CloseReason::FrameTooLong(_) | CloseReason::Error(_) => {
                warn!("{id} ({}) closed: {reason}", peer_name(socket))
            }
            _ => debug!("{id} ({}) closed: {reason}", peer_name(socket)),
        }
        self.close_hooks.push_back((id, reason));
        true
    }

    /// Runs the close hooks of connections closed since the last call. A
    /// hook may close more connections; their hooks run here too.
    fn run_close_hooks<H: Handler + ?Sized>(&mut self, handler: &mut H) {
        while let Some((id, reason)) = self.close_hooks.pop_front() {
            handler.on_close(&mut Context { core: self }, id, &reason);
        }
    }

    pub(crate) fn send(&mut self, id: ConnId, parts: &[&[u8]]) -> Result<(), Closed> {
        let Some(conn) = live_conn(&mut self.conns, id).filter(|c| c.is_open()) else {
            return Err(Closed(id));
        };
        conn.queue(parts, &mut self.pool);
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
            return Err(SendError::TooLong(crate::codec::FrameError {
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

    pub(crate) fn set_timer(&mut self, after: Duration, period: Option<Duration>) -> TimerId {
        // From the real now, not the turn's: a deadline computed from an
        // earlier instant could fire before `after` has passed.
        let now = Instant::now();
        let deadline = now
            .checked_add(after)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        self.timers.insert(deadline, period)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream as StdStream;

    use super::*;

    /// Records which connection each message and close was delivered to.
    #[derive(Default)]
    struct Recorder {
        connected: Vec<ConnId>,
        messages: Vec<(ConnId, Vec<u8>)>,
        closed: Vec<ConnId>,
    }

    impl Handler for Recorder {
        fn on_connect(&mut self, _cx: &mut Context<'_>, conn: ConnId) {
            self.connected.push(conn);
        }
        fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
            self.messages.push((conn, msg.to_vec()));
            let _ = cx.send_frame(conn, msg);
        }
        fn on_close(&mut self, _cx: &mut Context<'_>, conn: ConnId, _reason: &CloseReason) {
            self.closed.push(conn);
        }
    }

    fn turn_until(reactor: &mut Reactor, handler: &mut Recorder, done: impl Fn(&Recorder) -> bool) {
        for _ in 0..2000 {
            if done(handler) {
                return;
            }
            reactor
                .run_once(handler, Some(Duration::from_millis(5)))
                .unwrap();
        }
        panic!("condition not reached");
    }

    /// The token of a closed connection must never reach the connection that
    /// reuses its slot. Events are fed by hand, in the order that hurts:
    /// [conn k closes] [new conn takes slot k] [stale event for the old k].
    #[test]
    fn stale_token_never_reaches_the_connection_that_reuses_its_slot() {
        let mut reactor = Reactor::new().unwrap();
        let listener = reactor.listen("127.0.0.1:0").unwrap();
        let addr = reactor.local_addr(listener).unwrap();
        let listener_token = token::listener_token(listener);
        let mut handler = Recorder::default();

        // Connection A, accepted through a synthetic listener event.
        let client_a = StdStream::connect(addr).unwrap();
        turn_until(&mut reactor, &mut handler, |h| h.connected.len() == 1);
        let old = handler.connected[0];

        // Batch 1: A's peer resets (A closes in this batch), a new client
        // is accepted in the same batch, then a stale event for A arrives.
        socket2::SockRef::from(&client_a)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(client_a);
        let mut client_b = StdStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(20)); // let both reach the kernel queues
        reactor.dispatch(
            &mut handler,
            &[
                Readiness {
                    read_closed: true,
                    ..Readiness::readable(old.token())
                },
                Readiness::readable(listener_token),
                Readiness::readable(old.token()),
            ],
        );
        assert_eq!(handler.closed, [old]);
        assert_eq!(handler.connected.len(), 2);
        let b = handler.connected[1];
        assert_ne!(
            b.slot(),
            old.slot(),
            "a slot is reused only after its batch"
        );
        assert_eq!(reactor.stats().stale_events, 1);

        // Batch 2: connection C takes A's freed slot; a late event for A must
        // not be delivered to C.
        let mut client_c = StdStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        reactor.dispatch(&mut handler, &[Readiness::readable(listener_token)]);
        let c = handler.connected[2];
        assert_eq!(c.slot(), old.slot());
        assert_ne!(c, old);
        client_c.write_all(b"for c\n").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        reactor.dispatch(&mut handler, &[Readiness::readable(old.token())]);
        assert_eq!(reactor.stats().stale_events, 2);
        assert!(handler.messages.is_empty(), "stale event read C's data");
        assert!(reactor.context().is_open(c) && reactor.context().is_open(b));

        // C's own event still works, and both new connections are untouched.
        reactor.dispatch(&mut handler, &[Readiness::readable(c.token())]);
        assert_eq!(handler.messages, [(c, b"for c".to_vec())]);
        let mut echo = [0; 6];
        client_c.read_exact(&mut echo).unwrap();
        assert_eq!(&echo, b"for c\n");
        client_b.write_all(b"for b\n").unwrap();
        turn_until(&mut reactor, &mut handler, |h| h.messages.len() == 2);
        assert_eq!(handler.messages[1], (b, b"for b".to_vec()));
        assert_eq!(handler.closed, [old]);
    }

    #[test]
    fn listen_uses_the_configured_backlog_and_several_listeners() {
        let mut reactor = Reactor::with_config(Config::new().backlog(2048)).unwrap();
        let a = reactor.listen("127.0.0.1:0").unwrap();
        let b = reactor.listen("127.0.0.1:0").unwrap();
        let (addr_a, addr_b) = (
            reactor.local_addr(a).unwrap(),
            reactor.local_addr(b).unwrap(),
        );
        assert_ne!(addr_a.port(), 0);
        assert_ne!(addr_a, addr_b);
        let mut handler = Recorder::default();
        let _c1 = StdStream::connect(addr_a).unwrap();
        let _c2 = StdStream::connect(addr_b).unwrap();
        turn_until(&mut reactor, &mut handler, |h| h.connected.len() == 2);
    }

    #[test]
    fn idle_connections_hold_no_buffers() {
        let mut reactor = Reactor::new().unwrap();
        let listener = reactor.listen("127.0.0.1:0").unwrap();
        let addr = reactor.local_addr(listener).unwrap();
        let mut handler = Recorder::default();
        let mut clients: Vec<StdStream> = (0..100)
            .map(|_| StdStream::connect(addr).unwrap())
            .collect();
        turn_until(&mut reactor, &mut handler, |h| h.connected.len() == 100);
        for client in &mut clients {
            client.write_all(b"busy for a moment\n").unwrap();
        }
        for client in &mut clients {
            let mut echo = [0; 18];
            loop {
                reactor
                    .run_once(&mut handler, Some(Duration::ZERO))
                    .unwrap();
                client.set_nonblocking(true).unwrap();
                if client.read_exact(&mut echo).is_ok() {
                    break;
                }
            }
        }
        let per_connection = reactor.connection_heap_bytes() / 100;
        eprintln!(
            "idle connection heap: {per_connection} bytes (Conn is {} bytes)",
            std::mem::size_of::<Conn>()
        );
        assert!(
            per_connection < 256,
            "an idle connection holds {per_connection} heap bytes"
        );
    }
}
