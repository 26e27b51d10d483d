//! The event loop: one [`Reactor`] owns the poller, every socket, the
//! connections' queues and the timers, and [`Reactor::run_once`] walks the nine
//! phases of one turn described in the [crate docs](crate#one-turn-of-the-loop).

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener, ToSocketAddrs};
use std::os::unix::io::{AsRawFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, UnixListener};
use mio::Interest;
use socket2::{Domain, Protocol, Socket, Type};

use crate::backend::{Backend, MioBackend, Readiness};
use crate::config::Config;
use crate::conn::Conn;
use crate::core::{Core, Listener};
use crate::handle::Handle;
use crate::handler::{CloseReason, Context, Handler};
use crate::stats::Stats;
use crate::stream::ListenSocket;
use crate::timer::TimerId;
use crate::token::{self, ListenerId, SourceId};

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

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("backend", &self.core.backend.name())
            .field("listeners", &self.core.listeners.iter().flatten().count())
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
        Reactor {
            core: Core::new(config, backend),
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
        let socket = ListenSocket::Tcp(TcpListener::from_std(listener));
        self.add_listen_socket(socket, Some(addr))
    }

    /// Listens on a Unix domain socket at `path`. A stale socket file left
    /// by an earlier run is replaced; the file is removed again when the
    /// listener closes (at [`shutdown`](Reactor::shutdown) or when the
    /// reactor is dropped).
    ///
    /// # Errors
    ///
    /// The path cannot be bound (a directory missing, permissions), or the
    /// poller refused the socket.
    pub fn listen_unix(&mut self, path: impl AsRef<Path>) -> io::Result<ListenerId> {
        let path = path.as_ref();
        if std::fs::symlink_metadata(path)
            .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
        {
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        let socket = ListenSocket::Unix(listener, path.to_path_buf());
        self.add_listen_socket(socket, None)
    }

    fn add_listen_socket(
        &mut self,
        socket: ListenSocket,
        addr: Option<SocketAddr>,
    ) -> io::Result<ListenerId> {
        let id = ListenerId(self.core.listeners.len());
        self.core.backend.add(
            socket.as_raw_fd(),
            token::listener_token(id),
            Interest::READABLE,
        )?;
        let listener = Listener::new(socket, addr);
        debug!(
            "listening on {} ({})",
            listener.name,
            self.core.backend.name()
        );
        self.core.listeners.push(Some(listener));
        self.core.inputs += 1;
        Ok(id)
    }

    /// The address a listener is bound to (with the real port if 0 was
    /// asked); `None` once a shutdown closed it.
    pub fn local_addr(&self, listener: ListenerId) -> Option<SocketAddr> {
        self.core
            .listeners
            .get(listener.0)
            .and_then(|l| l.as_ref())
            .and_then(|l| l.addr)
    }

    /// The path a Unix listener is bound to; `None` for TCP listeners and
    /// once a shutdown closed it.
    pub fn local_path(&self, listener: ListenerId) -> Option<&Path> {
        self.core
            .listeners
            .get(listener.0)
            .and_then(|l| l.as_ref())
            .and_then(|l| l.socket.path())
    }

    /// Watches a descriptor of the embedder's own (a signal pipe, an
    /// eventfd, a timerfd) in the same poll as the sockets: readiness is
    /// reported to [`Handler::on_source`]. The caller keeps ownership of the
    /// descriptor and must [`deregister_source`](Reactor::deregister_source)
    /// it before closing it.
    ///
    /// Readiness is edge-triggered: drain the descriptor until `WouldBlock`
    /// on each report.
    ///
    /// # Errors
    ///
    /// The poller refused the descriptor.
    pub fn register_source(
        &mut self,
        source: &impl AsRawFd,
        interest: Interest,
    ) -> io::Result<SourceId> {
        self.core.add_source(source.as_raw_fd(), interest, None)
    }

    /// Takes ownership of `source` (a `mio::net::UdpSocket`, a
    /// `mio::unix::pipe::Receiver`, a timerfd: anything with a descriptor)
    /// and calls `callback` with it on the loop thread whenever it is ready.
    /// [`deregister_source`](Reactor::deregister_source) drops it.
    ///
    /// Readiness is edge-triggered: drain the source until `WouldBlock`.
    ///
    /// # Errors
    ///
    /// The poller refused the descriptor.
    ///
    /// # Examples
    ///
    /// ```
    /// use selectloop::{Interest, Reactor};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let socket = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    /// reactor.register_source_with(socket, Interest::READABLE, |socket, _cx, _event| {
    ///     let mut buf = [0u8; 1500];
    ///     while let Ok((n, from)) = socket.recv_from(&mut buf) {
    ///         let _ = socket.send_to(&buf[..n], from); // a UDP echo
    ///     }
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn register_source_with<S: AsRawFd + 'static>(
        &mut self,
        mut source: S,
        interest: Interest,
        mut callback: impl FnMut(&mut S, &mut Context<'_>, &Readiness) + 'static,
    ) -> io::Result<SourceId> {
        let fd = source.as_raw_fd();
        let callback = Box::new(move |cx: &mut Context<'_>, event: &Readiness| {
            callback(&mut source, cx, event)
        });
        self.core.add_source(fd, interest, Some(callback))
    }

    /// Stops watching a source added with
    /// [`register_source`](Reactor::register_source) or
    /// [`register_source_with`](Reactor::register_source_with) (which drops it).
    ///
    /// # Errors
    ///
    /// `NotFound` for an unknown id; otherwise the poller's refusal.
    pub fn deregister_source(&mut self, source: SourceId) -> io::Result<()> {
        self.core.remove_source(source)
    }

    /// A [`Handle`] for other threads: send, close, stop, shut down, or run
    /// a closure on the loop thread. Clones share one channel and waker.
    ///
    /// # Errors
    ///
    /// The backend cannot be woken from other threads (only mio's can), or
    /// the waker could not be created.
    pub fn handle(&mut self) -> io::Result<Handle> {
        self.core.handle()
    }

    /// Opens a TCP connection from outside a hook; see [`Context::connect`].
    ///
    /// # Errors
    ///
    /// As [`Context::connect`].
    pub fn connect(&mut self, addr: SocketAddr) -> io::Result<crate::ConnId> {
        self.core.connect_tcp(addr)
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
        if let Some(grace) = self.core.shutdown_requested.take() {
            self.shutdown(handler, grace)?;
        }
        Ok(())
    }

    /// Runs one turn of the loop, waiting at most `timeout` for events
    /// (`None`: until an event or the next timer; `Some(Duration::ZERO)`:
    /// not at all).
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
        core.begin_turn();
        core.stats.turns += 1;
        core.stats.events += events.len() as u64;
        let mut figures = TurnFigures::default();

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
        core.timers.collect_due(Instant::now(), &mut due);
        for timer in due.drain(..) {
            if core.timers.fire(timer) {
                core.stats.timers_fired += 1;
                core.call_hook(handler, "on_timer", |h, cx| h.on_timer(cx, timer));
                core.run_close_hooks(handler);
            }
        }
        self.due_timers = due;
        core.run_limit_timers(handler);
        core.flush(handler);
        if core.shutting_down {
            core.close_drained(handler);
        }

        // 9. Free the slots of connections closed this turn: only now can no
        //    event of this batch still name them.
        core.free_closed();
        trace!(
            "turn: inputs {} readable {} writable {} outputs {}",
            core.inputs,
            figures.readable,
            figures.writable,
            core.outputs
        );
    }

    /// Stops gracefully: stops accepting at once, answers what clients had
    /// already sent, writes out every connection's output, and closes each
    /// connection as soon as it is drained, or at `grace` from now at the
    /// latest (those are closed with [`CloseReason::Shutdown`] too). Returns
    /// when no connection is left. Timers keep firing meanwhile.
    ///
    /// # Errors
    ///
    /// Only a failure of the poller itself.
    pub fn shutdown<H: Handler + ?Sized>(
        &mut self,
        handler: &mut H,
        grace: Duration,
    ) -> io::Result<()> {
        let deadline = Instant::now() + grace;
        debug!(
            "shutting down: {} connections, {grace:?} to drain",
            self.core.open_connections
        );
        self.core.begin_shutdown();
        while self.core.open_connections > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.core.close_all(handler, || CloseReason::Shutdown);
                self.core.free_closed();
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

    /// The loop's counters.
    pub fn stats(&self) -> Stats {
        self.core.stats
    }

    /// Connections open now.
    pub fn connection_count(&self) -> usize {
        self.core.open_connections
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
    pub fn connection_heap_bytes(&self) -> usize {
        // A slab entry is the connection plus at most a word of tag.
        let slot = std::mem::size_of::<Conn>() + std::mem::size_of::<usize>();
        self.core.conns.len() * slot
            + self
                .core
                .conns
                .iter()
                .map(|(_, conn)| conn.heap_bytes())
                .sum::<usize>()
    }
}

impl AsRawFd for Reactor {
    /// The poller's descriptor (epoll's or kqueue's), readable while events
    /// wait: register it in another loop and call
    /// [`run_once`](Reactor::run_once) with a zero timeout when it fires,
    /// the way libuv exposes `uv_backend_fd`. `-1` if the backend has none.
    fn as_raw_fd(&self) -> RawFd {
        self.core.backend.raw_fd().unwrap_or(-1)
    }
}

impl Drop for Reactor {
    /// Handles fail from now on; Unix socket files are removed with their
    /// listeners; the worker pool finishes the jobs it holds.
    fn drop(&mut self) {
        self.core.close_handles();
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream as StdStream;

    use super::*;
    use crate::token::ConnId;

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
