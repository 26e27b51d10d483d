//! The event loop: one [`Reactor`] owns the poller, every socket, the
//! connections' queues and the timers, and [`Reactor::run_once`] walks the nine
//! phases of one turn described in the [crate docs](crate#one-turn-of-the-loop).
//!
//! Owns: the parts (`conn`, `listen`, `schedule`, `remote`, `sources`), the
//! backend, the turn's lists and figures, and every call of the handler.
//! It is the only code that calls every part; the parts never call it
//! back. See docs/architecture.md for the house.

mod accept;
mod conn_io;
mod connect;
mod core;
mod datagrams;
mod hooks;
mod jobs;
mod linger;
mod remote;
mod shutdown;
mod sources;
mod timeouts;

pub(crate) use self::core::Core;
pub(crate) use self::timeouts::TimerPayload;

#[cfg(unix)]
use crate::sys::RawSource;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::backend::{Backend, Readiness};
use crate::config::Config;
use crate::handle::Handle;
use crate::handler::{Context, Handler};
use crate::schedule::{deadline_after, TimerId};
use crate::stats::Stats;
use crate::token::{ConnId, ListenerId};

/// A single-threaded event loop serving TCP connections.
///
/// Create one, [`listen`](Reactor::listen) on one or more addresses, then
/// [`run`](Reactor::run) it with a [`Handler`].
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
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
    /// Whether the last turn asked the backend for events (see `run_once`).
    polled_last_turn: bool,
    /// Whether the last poll filled the batch, so that more events may
    /// wait in the poller (see `next_turn_in`).
    batch_was_full: bool,
}

/// The two of the seed's four figures that belong to one batch of events
/// (`len(rlist)`, `len(wlist)`); the other two are kept in the core.
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

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("backend", &self.core.backend.name())
            .field("listeners", &self.core.listeners.len())
            .field("connections", &self.core.conns.open())
            .field("timers", &self.core.timers.len())
            .field("sources", &self.core.sources.len())
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

    /// A reactor with `config` and the backend it names
    /// ([`Config::backend`]; by default [`MioBackend`](crate::backend::MioBackend)).
    ///
    /// # Errors
    ///
    /// The system refused to create the poller.
    pub fn with_config(config: Config) -> io::Result<Reactor> {
        let (backend, streams) = config.backend.open(config.events_capacity)?;
        let mut reactor = Reactor::with_backend(config, backend);
        reactor.core.streams = streams;
        Ok(reactor)
    }

    /// A reactor with `config` polling through `backend`.
    pub fn with_backend(config: Config, backend: Box<dyn Backend>) -> Reactor {
        Reactor {
            core: Core::new(config, backend),
            events: Vec::new(),
            due_timers: Vec::new(),
            polled_last_turn: false,
            batch_was_full: false,
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
        self.core.listen(addr)
    }

    /// Accepts on a listener bound elsewhere (inherited from a supervisor,
    /// say). It is switched to non-blocking mode.
    ///
    /// # Errors
    ///
    /// The socket has no local address, or the poller refused it.
    pub fn add_listener(&mut self, listener: StdListener) -> io::Result<ListenerId> {
        self.core.add_listener(listener)
    }

    /// Listens on a Unix domain socket at `path`. A socket file left by a
    /// server that is gone is replaced; the file is removed again when the
    /// listener closes (at [`shutdown`](Reactor::shutdown) or when the
    /// reactor is dropped).
    ///
    /// Unix only: Windows has no Unix domain sockets in mio.
    ///
    /// # Errors
    ///
    /// `AddrInUse` if a server answers at `path` (its socket is never
    /// taken over); otherwise the path cannot be bound (a directory missing,
    /// permissions), or the poller refused the socket.
    #[cfg(unix)]
    pub fn listen_unix(&mut self, path: impl AsRef<Path>) -> io::Result<ListenerId> {
        self.core.listen_unix(path.as_ref())
    }

    /// The address a listener is bound to (with the real port if 0 was
    /// asked); `None` once a shutdown closed it.
    pub fn local_addr(&self, listener: ListenerId) -> Option<SocketAddr> {
        self.core.listeners.local_addr(listener)
    }

    /// The path a Unix listener is bound to; `None` for TCP listeners and
    /// once a shutdown closed it.
    pub fn local_path(&self, listener: ListenerId) -> Option<&Path> {
        self.core.listeners.local_path(listener)
    }

    /// A [`Handle`] for other threads: send, close, stop, shut down, or run
    /// a closure on the loop thread. Clones share one channel and waker.
    ///
    /// # Errors
    ///
    /// The waker (an eventfd, or a pipe) could not be created or
    /// registered, for lack of descriptors say.
    pub fn handle(&mut self) -> io::Result<Handle> {
        self.core.handle()
    }

    /// Opens a TCP connection from outside a hook; see [`Context::connect`].
    ///
    /// # Errors
    ///
    /// As [`Context::connect`].
    pub fn connect(&mut self, addr: SocketAddr) -> io::Result<ConnId> {
        self.core.connect_tcp(addr)
    }

    /// Opens a Unix domain connection from outside a hook; see
    /// [`Context::connect_unix`].
    ///
    /// Unix only: Windows has no Unix domain sockets in mio.
    ///
    /// # Errors
    ///
    /// As [`Context::connect_unix`].
    #[cfg(unix)]
    pub fn connect_unix(&mut self, path: impl AsRef<Path>) -> io::Result<ConnId> {
        self.core.connect_unix(path.as_ref())
    }

    /// Runs turns until a handler calls [`Context::stop`].
    ///
    /// The handler owns its state (`'static`): the loop may lend it to the
    /// callbacks of [`register_source_with_handler`](Reactor::register_source_with_handler),
    /// and checks its type for them.
    ///
    /// # Errors
    ///
    /// Only a failure of the poller itself; errors on single connections close
    /// those connections and are reported to [`Handler::on_close`].
    pub fn run<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
    ) -> io::Result<()> {
        while !self.core.stop_requested {
            // Not `run_once`: the next turn's wait hands the kernel what
            // this one queued (a ring's writes), in the same system call.
            self.turn(handler, None)?;
        }
        self.core.backend.submit()?;
        self.core.stop_requested = false;
        if let Some(grace) = self.core.shutdown_requested.take() {
            self.shutdown(handler, grace)?;
        }
        Ok(())
    }

    /// How long a loop that drives this reactor from outside, through its
    /// descriptor (see [`AsRawFd`](std::os::unix::io::AsRawFd)), may wait before it calls
    /// [`run_once`](Reactor::run_once) again even if the descriptor stays
    /// quiet: zero when the last turn left work (a socket that spent its
    /// read budget, output to flush), or did that work without polling, or
    /// took a full batch ([`Config::events_capacity`]), since events may
    /// then wait unread in the poller with no new edge to report them;
    /// else the time to the next timer or deadline; `None` when only an
    /// event can bring work. libuv's `uv_backend_timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use selectloop::{Context, ConnId, Reactor};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let mut echo = |cx: &mut Context<'_>, conn: ConnId, msg: &[u8]| {
    ///     let _ = cx.send(conn, msg);
    /// };
    /// assert_eq!(reactor.next_turn_in(), None, "nothing to do, no timer");
    /// let timer = reactor.context().set_timer(Duration::from_secs(60));
    /// assert!(reactor.next_turn_in().unwrap() <= Duration::from_secs(60));
    /// reactor.context().cancel_timer(timer);
    /// reactor.run_once(&mut echo, Some(Duration::ZERO))?;
    /// assert_eq!(reactor.next_turn_in(), None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn next_turn_in(&mut self) -> Option<Duration> {
        let events_may_wait = !self.polled_last_turn || self.batch_was_full;
        if events_may_wait && self.core.stats.turns > 0 {
            return Some(Duration::ZERO);
        }
        if self.core.backend.has_unsubmitted() {
            return Some(Duration::ZERO); // registered, not yet watched
        }
        self.core.poll_timeout(None)
    }

    /// Runs one turn of the loop, waiting at most `timeout` for events
    /// (`None`: until an event or the next timer; `Some(Duration::ZERO)`:
    /// not at all). What the turn wrote is in the kernel when it returns,
    /// even on io_uring, whose writes are entries in a ring: that costs it
    /// one more system call a turn than [`run`](Reactor::run), whose next
    /// wait submits them.
    ///
    /// # Errors
    ///
    /// A failure of the poller itself; or, with
    /// [`Config::catch_panics`] off, a handler panic that
    /// unwound out of an earlier turn: that turn's work lists were lost
    /// with it, so the reactor refuses to go on rather than leave
    /// connections waiting forever. Drop it and build a new one.
    pub fn run_once<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        self.turn(handler, timeout)?;
        self.core.backend.submit()
    }

    /// One turn: phases 1 to 9.
    fn turn<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        self.core.config.check_item_type::<I>()?;
        self.core.check_source_handler::<H>()?;
        if self.core.in_turn {
            return Err(io::Error::other(
                "a handler panicked during an earlier turn (Config::catch_panics is off): \
                 this reactor cannot go on",
            ));
        }
        // 1. Timeout: zero if work is left from the last turn, else up to the
        //    next timer (the seed always waits 1 s, due or not).
        let work_left = self.core.work_left();
        let timeout = self.core.poll_timeout(timeout);

        // 2. Poll: `select.select(inputs, outputs, [], timeout)`. Work left
        //    from a turn that polled (a socket that filled its read budget)
        //    is done first without polling again: a poll with a zero timeout
        //    costs a system call and mostly finds nothing (a stream that
        //    sent exactly one budget's worth is read once more only to see
        //    `WouldBlock`). Every other turn still polls, so new events wait
        //    one turn at most.
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        let skip_poll = work_left && self.polled_last_turn;
        let polled = if skip_poll {
            Ok(())
        } else {
            self.core.stats.polls += 1;
            self.core.backend.poll(&mut events, timeout)
        };
        self.polled_last_turn = !skip_poll;
        self.batch_was_full = !skip_poll && events.len() >= self.core.config.events_capacity;
        if polled.is_ok() {
            self.dispatch(handler, &events);
        }
        self.events = events;
        polled
    }

    /// Phases 3 to 9 of a turn, on a batch of events. `run_once` calls it with
    /// what the poller returned; tests call it with a batch built by hand.
    pub(crate) fn dispatch<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
        events: &[Readiness],
    ) {
        let core = &mut self.core;
        // Cleared at the end of the turn: a panic unwinding out of a hook
        // leaves it set (see `run_once`).
        core.in_turn = true;
        core.begin_turn();
        core.stats.turns += 1;
        core.stats.events += events.len() as u64;
        let mut figures = TurnFigures::default();

        // Connections that spent their write budget last turn are written
        // in this turn's phase 7, beside the others.
        core.carry_over_flushes();

        // 3-5, first for the sockets left ready by the last turn's budgets:
        //    they have waited longest.
        core.serve_ready_list(handler);

        // 3. For each event, look the token up (stale ones are counted and
        //    dropped), then 4. accept on listeners or 5. read connections.
        for &event in events {
            figures.count(&event);
            core.on_event(handler, event);
        }

        // 6. Handle inbound messages, in order, for each connection that has
        //    some and room in its output.
        core.handle_inbound(handler);

        // 7. Flush: write what the handlers queued, at once.
        core.flush(handler);

        // 8. Fire due timers (the handler's, then the loop's own: accept
        //    back-off, idle and message deadlines), then flush what their
        //    hooks queued.
        let mut due = std::mem::take(&mut self.due_timers);
        core.fire_timers(handler, &mut due);
        self.due_timers = due;
        core.run_loop_timers(handler);
        core.flush(handler);
        if core.shutting_down {
            core.close_drained(handler);
        }

        // 9. Free the slots of connections closed this turn: only now can no
        //    event of this batch still name them. Once a second, the buffer
        //    pool lets what it keeps follow demand down.
        core.conns.free_closed();
        core.pool.decay(core.now);
        trace!(
            "turn: inputs {} readable {} writable {} outputs {} ({})",
            core.inputs(),
            figures.readable,
            figures.writable,
            core.conns.outputs(),
            core.backend.name()
        );
        core.in_turn = false;
    }

    /// Stops gracefully: stops accepting at once, answers what clients had
    /// already sent, writes out every connection's output, and closes each
    /// connection as soon as it is drained, or at `grace` from now at the
    /// latest (those are closed with [`CloseReason::Shutdown`](crate::CloseReason::Shutdown) too). Returns
    /// when no connection is left. Timers keep firing meanwhile.
    ///
    /// # Errors
    ///
    /// Only a failure of the poller itself.
    pub fn shutdown<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
        grace: Duration,
    ) -> io::Result<()> {
        let deadline = deadline_after(Instant::now(), grace);
        debug!(
            "shutting down: {} connections, {grace:?} to drain",
            self.core.conns.open()
        );
        self.core.begin_shutdown();
        // The first turn polls, even with work listed: a completion backend
        // (io_uring) knows what its sockets received only from a poll, and
        // what clients sent before the shutdown is still answered.
        self.polled_last_turn = false;
        while self.core.conns.open() > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.core.close_all(handler);
                self.core.conns.free_closed();
                break;
            }
            self.run_once(handler, Some(left))?;
        }
        self.core.stop_requested = false;
        Ok(())
    }

    /// A context for acting on the loop from outside a hook: to set a timer
    /// before the first turn, say. Close hooks it causes run during the next
    /// turn.
    pub fn context(&mut self) -> Context<'_> {
        Context {
            core: &mut self.core,
        }
    }

    /// The loop's counters (a copy, as [`Context::stats`] gives them).
    pub fn stats(&self) -> Stats {
        self.core.stats
    }

    /// Connections open now.
    pub fn connection_count(&self) -> usize {
        self.core.conns.open()
    }

    /// The seed's `len(inputs)`: sockets whose readability the loop acts
    /// on now (listeners accepting, connections reading; not those paused
    /// or closing).
    pub fn inputs(&self) -> usize {
        self.core.inputs()
    }

    /// The seed's `len(outputs)`: connections waiting for their socket to
    /// take more output (a write returned `WouldBlock`), and so registered
    /// for WRITABLE. Zero once every answer is written.
    pub fn outputs(&self) -> usize {
        self.core.conns.outputs()
    }

    /// The connection cap in force: [`Config::max_connections`] fitted under
    /// the process's descriptor limit.
    pub fn max_connections(&self) -> usize {
        self.core.max_connections
    }

    /// The backend's name (`"epoll"`, `"kqueue"`).
    pub fn backend_name(&self) -> &'static str {
        self.core.backend.name()
    }

    /// Heap bytes held by open connections: their slab slots and buffers.
    /// An idle connection holds no buffer, only its slot. (The table's
    /// unused reserve is address space the kernel has not backed with
    /// memory, and is not counted.)
    #[cfg(all(test, unix))]
    pub(crate) fn connection_heap_bytes(&self) -> usize {
        // A slab entry is the connection plus at most a word of tag.
        let slot = std::mem::size_of::<crate::conn::Conn>() + std::mem::size_of::<usize>();
        self.core.conns.slots_in_use() * slot
            + self
                .core
                .conns
                .iter()
                .map(|conn| conn.heap_bytes())
                .sum::<usize>()
    }
}

#[cfg(unix)]
impl std::os::unix::io::AsRawFd for Reactor {
    /// The poller's descriptor (epoll's or kqueue's), readable while events
    /// wait: register it in another loop and call
    /// [`run_once`](Reactor::run_once) with a zero timeout when it fires,
    /// or when [`next_turn_in`](Reactor::next_turn_in) has passed (work
    /// left from a turn and timers do not make the descriptor readable),
    /// the way libuv exposes `uv_backend_fd` and `uv_backend_timeout`.
    /// `-1` if the backend has none.
    fn as_raw_fd(&self) -> RawSource {
        self.core.backend.raw_fd().unwrap_or(-1)
    }
}

impl Drop for Reactor {
    /// Handles fail from now on; Unix socket files are removed with their
    /// listeners; the worker pool finishes the jobs it holds (their results
    /// are dropped).
    fn drop(&mut self) {
        self.core.close_handles();
        self.core.jobs.stop();
    }
}

// Their tests read the kernel's socket queues (ioctl, poll): Unix's.
#[cfg(all(test, unix))]
mod tests;
