//! The [`Context`] the loop hands a [`Handler`](crate::Handler): everything
//! a handler may do to connections, timers and the loop itself.

use std::any::Any;
use std::fmt;
use std::io;
use std::net::SocketAddr;
#[cfg(unix)]
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::close::{CloseReason, Closed, Origin, SendError};
use crate::handle::Handle;
use crate::reactor::{Core, TimerPayload};
use crate::remote::JobRejected;
use crate::schedule::TimerId;
use crate::sources::DatagramPeer;
use crate::stats::Stats;
use crate::token::{ConnId, SourceId};

/// What a [`Handler`](crate::Handler) can do from inside a hook.
///
/// Output is queued, not written on the spot: the loop writes it right after
/// the handlers of this turn ran (the optimistic write), so many small sends
/// to one connection cost one system call.
pub struct Context<'a> {
    pub(crate) core: &'a mut Core,
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("connections", &self.connection_count())
            .finish()
    }
}

impl Context<'_> {
    /// Queues `bytes` for `conn`, as they are (no framing).
    ///
    /// # Errors
    ///
    /// [`Closed`] if `conn` is closed or closing.
    pub fn send(&mut self, conn: ConnId, bytes: &[u8]) -> Result<(), Closed> {
        self.core.send(conn, &[bytes])
    }

    /// Queues several pieces for `conn` back to back, without joining them
    /// first (`b"response: "` and the message, say).
    ///
    /// # Errors
    ///
    /// [`Closed`] if `conn` is closed or closing.
    pub fn send_parts(&mut self, conn: ConnId, parts: &[&[u8]]) -> Result<(), Closed> {
        self.core.send(conn, parts)
    }

    /// Queues `bytes` for `conn` without copying them: the connection keeps
    /// a reference until the socket has taken the last byte. The way to
    /// send one large value to many connections (a cache's hot item, a
    /// broadcast): each holds the same buffer. Its bytes count against the
    /// output limits as any others.
    ///
    /// # Errors
    ///
    /// [`Closed`] if `conn` is closed or closing.
    ///
    /// # Examples
    ///
    /// ```
    /// use selectloop::{Bytes, ConnId, Context, Handler};
    ///
    /// /// Answers every message with the same 1 MiB, never copied.
    /// struct Download(Bytes);
    ///
    /// impl Handler for Download {
    ///     fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, _msg: &[u8]) {
    ///         let _ = cx.send_shared(conn, self.0.clone());
    ///     }
    /// }
    ///
    /// let _ = Download(Bytes::from(vec![b'x'; 1 << 20]));
    /// ```
    pub fn send_shared(&mut self, conn: ConnId, bytes: impl Into<Bytes>) -> Result<(), Closed> {
        self.core.send_shared(conn, bytes.into())
    }

    /// Queues `payload` for `conn` framed by the reactor's codec: followed by
    /// `\n` for lines, preceded by its length for length-prefixed frames.
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] if the connection is gone, [`SendError::TooLong`]
    /// if the peer's decoder would refuse the message (nothing is queued).
    pub fn send_frame(&mut self, conn: ConnId, payload: &[u8]) -> Result<(), SendError> {
        self.core.send_frame(conn, payload)
    }

    /// Closes `conn` once everything queued for it is written. It reads and
    /// handles nothing more meanwhile. An outbound connection still
    /// connecting writes what was queued once the connect completes, then
    /// closes (its `on_connect` is not called; `on_close` is). Returns
    /// `false` if it was already gone.
    pub fn close(&mut self, conn: ConnId) -> bool {
        self.core.close_after_flush(conn)
    }

    /// Closes `conn` at once, dropping unwritten output. Returns `false` if it
    /// was already gone.
    pub fn close_now(&mut self, conn: ConnId) -> bool {
        self.core.close(conn, CloseReason::ClosedByHandler)
    }

    /// Gives `conn` an idle timeout of its own in place of
    /// [`Config::idle_timeout`](crate::Config::idle_timeout) (`None`: never
    /// idle): a server that starts a long transfer, or knows a client may
    /// think for a while, sets what fits it. Returns `false` if `conn` is
    /// gone or closing.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use selectloop::{ConnId, Context, Handler};
    ///
    /// struct Uploads;
    ///
    /// impl Handler for Uploads {
    ///     fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
    ///         if msg == b"UPLOAD" {
    ///             // A slow uploader may pause for up to ten minutes.
    ///             cx.set_idle_timeout(conn, Some(Duration::from_secs(600)));
    ///         }
    ///     }
    /// }
    /// ```
    pub fn set_idle_timeout(&mut self, conn: ConnId, timeout: Option<Duration>) -> bool {
        self.core.set_idle_timeout(conn, timeout)
    }

    /// Gives `conn` a message deadline of its own in place of
    /// [`Config::message_deadline`](crate::Config::message_deadline)
    /// (`None`: none): a message that has begun must be whole within it.
    /// Returns `false` if `conn` is gone or closing.
    pub fn set_message_deadline(&mut self, conn: ConnId, deadline: Option<Duration>) -> bool {
        self.core.set_message_deadline(conn, deadline)
    }

    /// Opens a TCP connection to `addr` without blocking. Returns its id at
    /// once; [`Handler::on_connect`](crate::Handler::on_connect) is called when it completes, or
    /// [`Handler::on_close`](crate::Handler::on_close) with [`CloseReason::ConnectFailed`] if it fails
    /// or takes longer than [`Config::connect_timeout`](crate::Config::connect_timeout).
    /// Bytes sent before it completes are queued.
    ///
    /// # Errors
    ///
    /// The socket could not be created or registered (out of descriptors).
    pub fn connect(&mut self, addr: SocketAddr) -> io::Result<ConnId> {
        self.core.connect_tcp(addr)
    }

    /// Like [`connect`](Context::connect), to a Unix domain socket.
    ///
    /// Unix only: Windows has no Unix domain sockets in mio.
    ///
    /// # Errors
    ///
    /// The socket could not be created or registered; a path nobody listens
    /// on may fail here or later, as the system reports it.
    #[cfg(unix)]
    pub fn connect_unix(&mut self, path: impl AsRef<Path>) -> io::Result<ConnId> {
        self.core.connect_unix(path.as_ref())
    }

    /// Whether `conn` was accepted or opened by this reactor; `None` if it is gone.
    pub fn origin(&self, conn: ConnId) -> Option<Origin> {
        self.core.origin(conn)
    }

    /// Stops reading from `conn` (its READABLE interest is removed) until
    /// [`resume_reading`](Context::resume_reading). The peer is then held
    /// back by TCP flow control. Returns `false` if it is gone.
    pub fn pause_reading(&mut self, conn: ConnId) -> bool {
        self.core.pause_reading_by_handler(conn)
    }

    /// Undoes [`pause_reading`](Context::pause_reading). Returns `false` if
    /// the connection is gone.
    pub fn resume_reading(&mut self, conn: ConnId) -> bool {
        self.core.resume_reading_by_handler(conn)
    }

    /// Runs `work` on the worker pool, then `done` on the loop thread with
    /// its result, if `conn` is still open by then (otherwise the result is
    /// dropped and counted in [`Stats::jobs_dropped`]). Results of
    /// several jobs come back in the order they finish; see
    /// [`submit_ordered`](Context::submit_ordered).
    ///
    /// # Errors
    ///
    /// [`JobRejected::QueueFull`] when [`Config::job_queue`](crate::Config::job_queue)
    /// jobs already wait (the loop never blocks on the pool),
    /// [`JobRejected::Closed`] if `conn` is gone.
    pub fn submit<T: Send + 'static>(
        &mut self,
        conn: ConnId,
        work: impl FnOnce() -> T + Send + 'static,
        done: impl FnOnce(&mut Context<'_>, ConnId, T) + Send + 'static,
    ) -> Result<(), JobRejected> {
        self.core.submit(conn, false, work, done)
    }

    /// Like [`submit`](Context::submit), but the results of the jobs
    /// submitted this way for one connection are delivered in the order the
    /// jobs were submitted, so answers keep the order of the requests.
    ///
    /// # Errors
    ///
    /// As [`submit`](Context::submit).
    pub fn submit_ordered<T: Send + 'static>(
        &mut self,
        conn: ConnId,
        work: impl FnOnce() -> T + Send + 'static,
        done: impl FnOnce(&mut Context<'_>, ConnId, T) + Send + 'static,
    ) -> Result<(), JobRejected> {
        self.core.submit(conn, true, work, done)
    }

    /// A handle for other threads (created with the first call).
    ///
    /// # Errors
    ///
    /// The backend cannot be woken from other threads (it is not mio's), or
    /// the waker could not be created.
    pub fn handle(&mut self) -> io::Result<Handle> {
        self.core.handle()
    }

    /// Keeps `state` with `conn` for the handler, in place of any it had:
    /// the loop owns it from now on, lends it back with
    /// [`with_state`](Context::with_state), and drops it with the
    /// connection (after [`Handler::on_close`](crate::Handler::on_close), which may
    /// [`take_state`](Context::take_state) it for a last look). No map
    /// from [`ConnId`] to a session beside the loop's own table. Returns
    /// `false`, dropping `state`, if `conn` is not open.
    ///
    /// # Examples
    ///
    /// A session per client: a name given once, used in every answer.
    ///
    /// ```
    /// use selectloop::{ConnId, Context, Handler};
    ///
    /// struct Session { name: String }
    ///
    /// struct Greeter;
    ///
    /// impl Handler for Greeter {
    ///     fn on_connect(&mut self, cx: &mut Context<'_>, conn: ConnId) {
    ///         cx.set_state(conn, Session { name: "stranger".into() });
    ///     }
    ///
    ///     fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
    ///         cx.with_state(conn, |session: &mut Session, cx| {
    ///             match msg.strip_prefix(b"I am ") {
    ///                 Some(name) => session.name = String::from_utf8_lossy(name).into(),
    ///                 None => {
    ///                     let _ = cx.send(conn, format!("hello, {}\n", session.name).as_bytes());
    ///                 }
    ///             }
    ///         });
    ///     }
    /// }
    /// ```
    pub fn set_state<T: 'static>(&mut self, conn: ConnId, state: T) -> bool {
        match self.core.conns.get_mut(conn).filter(|c| c.is_open()) {
            Some(open) => {
                open.put_state(Box::new(state));
                true
            }
            None => false,
        }
    }

    /// Calls `f` with `conn`'s state, if it holds one of type `T`, and
    /// this context (the state is lent out of the connection meanwhile, so
    /// `f` may send, close, or touch other connections). Works until the
    /// connection's slot is freed, in `on_close` too. `None` if `conn` is
    /// gone or holds no `T`.
    pub fn with_state<T: 'static, R>(
        &mut self,
        conn: ConnId,
        f: impl FnOnce(&mut T, &mut Context<'_>) -> R,
    ) -> Option<R> {
        let mut state = self.core.conns.get_even_closed_mut(conn)?.take_state()?;
        let answer = state.downcast_mut::<T>().map(|typed| f(typed, self));
        // Back with its connection, unless `f` gave it a new one.
        if let Some(owner) = self.core.conns.get_even_closed_mut(conn) {
            if !owner.has_state() {
                owner.put_state(state);
            }
        }
        answer
    }

    /// Takes `conn`'s state out for good, if it is a `T` (in
    /// [`Handler::on_close`](crate::Handler::on_close), the last look at it); `None` otherwise, and
    /// the state stays.
    pub fn take_state<T: 'static>(&mut self, conn: ConnId) -> Option<T> {
        let owner = self.core.conns.get_even_closed_mut(conn)?;
        let state = owner.take_state()?;
        match state.downcast::<T>() {
            Ok(typed) => Some(*typed),
            Err(other) => {
                owner.put_state(other);
                None
            }
        }
    }

    /// Sends `data` in one datagram to `to` from `socket` (a datagram
    /// socket of the loop): at once, or, while the socket's send buffer is
    /// full, from a queue of at most
    /// [`Config::datagram_queue_bytes`](crate::Config::datagram_queue_bytes).
    ///
    /// # Errors
    ///
    /// `NotFound` if `socket` is no datagram socket of the loop;
    /// `WouldBlock` if the queue is full (the datagram is dropped, and
    /// counted); `InvalidInput` for a peer of the other family, or an
    /// unnamed Unix peer; otherwise what the system said.
    pub fn send_to(&mut self, socket: SourceId, to: &DatagramPeer, data: &[u8]) -> io::Result<()> {
        self.core.send_datagram(socket, to, data)
    }

    /// Binds a UDP socket on the loop from inside a hook, as
    /// [`Reactor::bind_udp`](crate::Reactor::bind_udp) does.
    ///
    /// # Errors
    ///
    /// As [`Reactor::bind_udp`](crate::Reactor::bind_udp).
    pub fn bind_udp(&mut self, addr: SocketAddr) -> io::Result<SourceId> {
        self.core.bind_udp(addr)
    }

    /// Watches `source` from inside a hook, calling `callback` when it is
    /// ready, as [`Reactor::register_source_with`](crate::Reactor::register_source_with)
    /// does.
    ///
    /// # Errors
    ///
    /// The poller refused the descriptor.
    pub fn register_source_with<S: crate::sys::AsRawSource + 'static>(
        &mut self,
        source: S,
        interest: crate::Interest,
        callback: impl FnMut(&mut S, &mut Context<'_>, &crate::backend::Readiness) + 'static,
    ) -> io::Result<SourceId> {
        self.core.add_source_with(source, interest, callback)
    }

    /// Watches `source` from inside a hook, lending `callback` the handler
    /// too, as [`Reactor::register_source_with_handler`](crate::Reactor::register_source_with_handler)
    /// does.
    ///
    /// # Errors
    ///
    /// The poller refused the descriptor; or `InvalidInput`, `H` is not the
    /// handler type this loop's sources were registered for.
    pub fn register_source_with_handler<H: ?Sized + 'static, S>(
        &mut self,
        source: S,
        interest: crate::Interest,
        callback: impl FnMut(&mut H, &mut S, &mut Context<'_>, &crate::backend::Readiness) + 'static,
    ) -> io::Result<SourceId>
    where
        S: crate::sys::AsRawSource + 'static,
    {
        self.core
            .add_source_with_handler(source, interest, callback)
    }

    /// Serves `source` again next turn, as if it had reported readable,
    /// without waiting for an event: for a callback (or `on_source`) that
    /// stopped before `WouldBlock` to let the connections have their turn.
    /// Readiness is edge-triggered: a source left with data and not
    /// served again would not be reported until more arrives. Returns
    /// `false` if it is already listed, or gone.
    ///
    /// # Examples
    ///
    /// A pipe read a kilobyte at a time, the rest next turn:
    ///
    /// ```
    /// use std::io::Read;
    /// use selectloop::{Interest, Reactor};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let (ours, _theirs) = mio::net::UnixStream::pair()?;
    /// reactor.register_source_with(ours, Interest::READABLE, |pipe, cx, _event| {
    ///     let mut kilobyte = [0u8; 1024];
    ///     if matches!(pipe.read(&mut kilobyte), Ok(1024)) {
    ///         let me = cx.current_source().expect("inside a source's callback");
    ///         cx.serve_again(me);
    ///     }
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn serve_again(&mut self, source: SourceId) -> bool {
        self.core.list_source(source)
    }

    /// The source whose callback (or [`Handler::on_source`](crate::Handler::on_source))
    /// is running; `None` elsewhere.
    pub fn current_source(&self) -> Option<SourceId> {
        self.core.current_source
    }

    /// Stops watching a source (a datagram socket too, which it closes), as
    /// [`Reactor::deregister_source`](crate::Reactor::deregister_source) does.
    ///
    /// # Errors
    ///
    /// As [`Reactor::deregister_source`](crate::Reactor::deregister_source).
    pub fn deregister_source(&mut self, source: SourceId) -> io::Result<()> {
        self.core.remove_source(source)
    }

    /// Whether `conn` is open (not closing, not closed).
    pub fn is_open(&self, conn: ConnId) -> bool {
        self.core.is_open(conn)
    }

    /// The address of `conn`'s peer, if it is still known to the loop.
    pub fn peer_addr(&self, conn: ConnId) -> Option<SocketAddr> {
        self.core.peer_addr(conn)
    }

    /// Bytes queued for `conn` and not yet taken by its socket.
    pub fn pending_output(&self, conn: ConnId) -> usize {
        self.core.pending_output(conn)
    }

    /// Calls [`Handler::on_timer`](crate::Handler::on_timer) once, `after` from now (never earlier).
    pub fn set_timer(&mut self, after: Duration) -> TimerId {
        self.core.set_timer(after, None, None)
    }

    /// Calls [`Handler::on_timer_value`](crate::Handler::on_timer_value) with `value` once, `after` from
    /// now: a timer that says what it is for (the connection to ping, the
    /// key to expire), so the handler keeps no table of timer ids.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::any::Any;
    /// use std::time::Duration;
    /// use selectloop::{ConnId, Context, Handler, TimerId};
    ///
    /// /// Says goodbye to each client ten seconds after it said hello.
    /// struct Farewells;
    ///
    /// impl Handler for Farewells {
    ///     fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
    ///         if msg == b"hello" {
    ///             cx.set_timer_with(Duration::from_secs(10), conn);
    ///         }
    ///     }
    ///
    ///     fn on_timer_value(&mut self, cx: &mut Context<'_>, _timer: TimerId, value: Box<dyn Any>) {
    ///         if let Ok(conn) = value.downcast::<ConnId>() {
    ///             let _ = cx.send(*conn, b"goodbye\n");
    ///             cx.close(*conn);
    ///         }
    ///     }
    /// }
    /// ```
    pub fn set_timer_with(&mut self, after: Duration, value: impl Any) -> TimerId {
        let payload = TimerPayload::Value(Box::new(value));
        self.core.set_timer(after, None, Some(payload))
    }

    /// Calls `call` once, `after` from now, in place of the handler's
    /// `on_timer`: for work that needs only the context (close this
    /// connection, send that line). Cancel it as any timer.
    pub fn call_after(
        &mut self,
        after: Duration,
        call: impl FnOnce(&mut Context<'_>) + 'static,
    ) -> TimerId {
        self.core
            .set_timer(after, None, Some(TimerPayload::Once(Box::new(call))))
    }

    /// Calls `call` every `period` until the timer is cancelled (by `call`
    /// itself, if it likes), as [`set_periodic`](Context::set_periodic)
    /// calls `on_timer`.
    pub fn call_every(
        &mut self,
        period: Duration,
        call: impl FnMut(&mut Context<'_>) + 'static,
    ) -> TimerId {
        let payload = TimerPayload::Every(Box::new(call));
        self.core.set_timer(period, Some(period), Some(payload))
    }

    /// Calls [`Handler::on_timer`](crate::Handler::on_timer) every `period` until cancelled. A loop that
    /// falls behind skips the missed periods instead of firing them in a burst.
    /// A period shorter than [`MIN_PERIOD`](crate::MIN_PERIOD) (1 ms),
    /// zero included, is raised to it: a period of zero would fire on every
    /// turn without the loop ever waiting.
    pub fn set_periodic(&mut self, period: Duration) -> TimerId {
        self.core.set_timer(period, Some(period), None)
    }

    /// Cancels a timer. Returns whether it was still pending; an id that
    /// already fired (one-shot) or was cancelled is ignored.
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        self.core.timers.cancel(timer)
    }

    /// Whether `timer` is still pending (a periodic timer stays pending until
    /// cancelled).
    pub fn timer_pending(&self, timer: TimerId) -> bool {
        self.core.timers.contains(timer)
    }

    /// Makes [`Reactor::run`](crate::Reactor::run) return after this turn.
    pub fn stop(&mut self) {
        self.core.stop_requested = true;
    }

    /// Makes [`Reactor::run`](crate::Reactor::run) shut down gracefully
    /// after this turn, then return: no more accepting, every connection
    /// written out and closed within `grace`
    /// ([`Reactor::shutdown`](crate::Reactor::shutdown)).
    pub fn shutdown(&mut self, grace: Duration) {
        self.core.shutdown_requested = Some(grace);
        self.core.stop_requested = true;
    }

    /// Connections open now (closing ones included, closed ones not).
    pub fn connection_count(&self) -> usize {
        self.core.conns.open()
    }

    /// The loop's counters, as [`Reactor::stats`](crate::Reactor::stats)
    /// gives them.
    pub fn stats(&self) -> Stats {
        self.core.stats
    }

    /// The time this turn of the loop woke up; cheaper than `Instant::now()`
    /// and the same for every hook of the turn.
    pub fn now(&self) -> Instant {
        self.core.now
    }
}
