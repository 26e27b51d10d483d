//! The embedder's sources and the signals it catches: registering their
//! descriptors, and calling a source's callback (or the handler's
//! `on_source`, or `on_signal` for the signal pipe) when one is ready.

use crate::sys::{AsRawSource, RawSource, RawSourceExt};
use std::any::Any;
use std::io;

use super::{Core, Reactor};
use crate::backend::Readiness;
use crate::codec::TypeTag;
use crate::handler::{Context, Handler};
use crate::sources::{Endpoint, Signal, SignalPipe};
use crate::token::SourceId;
use crate::Interest;

impl Reactor {
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
        source: &impl AsRawSource,
        interest: Interest,
    ) -> io::Result<SourceId> {
        self.core.add_source(source.raw_source(), interest, None)
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
    pub fn register_source_with<S: AsRawSource + 'static>(
        &mut self,
        source: S,
        interest: Interest,
        callback: impl FnMut(&mut S, &mut Context<'_>, &Readiness) + 'static,
    ) -> io::Result<SourceId> {
        self.core.add_source_with(source, interest, callback)
    }

    /// As [`register_source_with`](Reactor::register_source_with), with
    /// the handler lent to `callback` too: the state a source's events
    /// change (counters fed by a UDP socket, a cache a reload refills)
    /// lives in the handler beside what the connections change, with no
    /// `Rc<RefCell<_>>` between them. calloop passes its shared data to
    /// every callback the same way.
    ///
    /// `H` is the type of the handler the loop will run: while such a
    /// source is registered, a turn run with a handler of another type is
    /// refused with an error that names both (before anything is served),
    /// as is a source registered for another type.
    ///
    /// # Errors
    ///
    /// The poller refused the descriptor; or `InvalidInput`, a source is
    /// registered for a handler of another type.
    ///
    /// # Examples
    ///
    /// A statsd-style counter fed by UDP, read by the TCP clients:
    ///
    /// ```
    /// use selectloop::{ConnId, Context, Handler, Interest, Reactor};
    ///
    /// #[derive(Default)]
    /// struct Counter { total: u64 }
    ///
    /// impl Handler for Counter {
    ///     fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, _msg: &[u8]) {
    ///         let _ = cx.send(conn, format!("{}\n", self.total).as_bytes());
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let socket = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    /// let addr = socket.local_addr()?;
    /// reactor.register_source_with_handler(
    ///     socket,
    ///     Interest::READABLE,
    ///     |counter: &mut Counter, socket, _cx, _event| {
    ///         let mut buf = [0u8; 64];
    ///         while let Ok(n) = socket.recv(&mut buf) {
    ///             let text = std::str::from_utf8(&buf[..n]).unwrap_or("");
    ///             counter.total += text.trim().parse::<u64>().unwrap_or(0);
    ///         }
    ///     },
    /// )?;
    ///
    /// let sender = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// sender.send_to(b"5", addr)?;
    /// let mut counter = Counter::default();
    /// let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    /// while counter.total == 0 && std::time::Instant::now() < deadline {
    ///     reactor.run_once(&mut counter, Some(std::time::Duration::from_millis(10)))?;
    /// }
    /// assert_eq!(counter.total, 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn register_source_with_handler<H: ?Sized + 'static, S: AsRawSource + 'static>(
        &mut self,
        source: S,
        interest: Interest,
        callback: impl FnMut(&mut H, &mut S, &mut Context<'_>, &Readiness) + 'static,
    ) -> io::Result<SourceId> {
        self.core
            .add_source_with_handler(source, interest, callback)
    }

    /// Stops watching a source added with
    /// [`register_source`](Reactor::register_source) or
    /// [`register_source_with`](Reactor::register_source_with) (which drops it).
    /// Its id is dead from now on: an event still queued for it in this
    /// turn's batch is dropped, and a source registered later never answers
    /// to it.
    ///
    /// # Errors
    ///
    /// `NotFound` for an unknown id (or one already deregistered); otherwise
    /// the poller's refusal.
    pub fn deregister_source(&mut self, source: SourceId) -> io::Result<()> {
        self.core.remove_source(source)
    }

    /// Hears `signals` on the loop: each one that comes is handed to
    /// [`Handler::on_signal`] on the loop thread, between turns of work,
    /// where the handler may do anything it does elsewhere. By default
    /// SIGINT and SIGTERM shut the loop down gracefully
    /// ([`Context::shutdown`] with [`Config::shutdown_grace`](crate::Config::shutdown_grace)),
    /// and [`run`](Reactor::run) returns once the connections have
    /// drained; the others are ignored until the handler says otherwise.
    ///
    /// Catch them before the address is made known: a signal sent earlier
    /// finds the default action (for these, the end of the process).
    /// Signals are the process's: a second reactor catching the same one
    /// hears it too.
    ///
    /// On Windows, [`Signal::Interrupt`] is Ctrl-C and [`Signal::Terminate`]
    /// Ctrl-Break, the console window closing or the system shutting down
    /// (the console's control events); the others have no counterpart
    /// there and are refused.
    ///
    /// # Errors
    ///
    /// The pipe could not be made or registered, or a handler installed;
    /// on Windows, `Unsupported` for a signal other than those two.
    ///
    /// # Examples
    ///
    /// A server that stops gracefully on SIGTERM and reloads on SIGHUP:
    ///
    /// ```
    /// use selectloop::{ConnId, Context, Handler, Reactor, Signal};
    ///
    /// struct Server { reloads: u32 }
    ///
    /// impl Handler for Server {
    ///     fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
    ///         let _ = cx.send(conn, msg);
    ///     }
    ///     fn on_signal(&mut self, cx: &mut Context<'_>, signal: Signal) {
    ///         match signal {
    ///             Signal::Hangup => self.reloads += 1, // read the configuration again
    ///             other if other.is_stop() => cx.shutdown(std::time::Duration::from_secs(5)),
    ///             _ => {}
    ///         }
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.catch_signals(&[Signal::Interrupt, Signal::Terminate, Signal::Hangup])?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn catch_signals(&mut self, signals: &[Signal]) -> io::Result<()> {
        if self.core.signals.is_none() {
            let pipe = SignalPipe::new()?;
            let source = self
                .core
                .add_source(pipe.raw_source(), Interest::READABLE, None)?;
            self.core.signals = Some((pipe, source));
        }
        let Some((pipe, _)) = self.core.signals.as_mut() else {
            unreachable!("made above");
        };
        signals.iter().try_for_each(|&signal| pipe.add(signal))
    }

    /// [`catch_signals`](Reactor::catch_signals) of SIGINT and SIGTERM:
    /// with the default [`Handler::on_signal`], `run` drains the
    /// connections and returns when either comes.
    ///
    /// # Errors
    ///
    /// As [`catch_signals`](Reactor::catch_signals).
    pub fn stop_on_signals(&mut self) -> io::Result<()> {
        self.catch_signals(&[Signal::Interrupt, Signal::Terminate])
    }
}

/// A callback given with `register_source_with`.
pub(crate) type Callback = Box<dyn FnMut(&mut Context<'_>, &Readiness)>;

/// A callback given with `register_source_with_handler`, for a loop whose
/// handler is an `H`.
type HandlerCallback<H> = Box<dyn FnMut(&mut H, &mut Context<'_>, &Readiness)>;

/// What serves one source (none: the handler's `on_source` does).
pub(crate) enum SourceCallback {
    /// A callback of the embedder's.
    Call(Callback),
    /// A callback that takes the handler too: a `HandlerCallback<H>`, `H`
    /// the type in [`Core::source_handler`] (its type cannot be named
    /// here, where the handler's is not known).
    WithHandler(Box<dyn Any>),
    /// A datagram socket, whose datagrams go to `Handler::on_datagram`.
    Datagram(Endpoint),
}

impl Core {
    /// Takes ownership of `source` and serves it with `callback`.
    pub(crate) fn add_source_with<S: AsRawSource + 'static>(
        &mut self,
        mut source: S,
        interest: Interest,
        mut callback: impl FnMut(&mut S, &mut Context<'_>, &Readiness) + 'static,
    ) -> io::Result<SourceId> {
        let fd = source.raw_source();
        let callback = Box::new(move |cx: &mut Context<'_>, event: &Readiness| {
            callback(&mut source, cx, event)
        });
        self.add_source(fd, interest, Some(SourceCallback::Call(callback)))
    }

    /// Takes ownership of `source` and serves it with `callback`, which
    /// is lent the handler too; every such source on a loop names the same
    /// handler type, which `run_once` then requires.
    pub(crate) fn add_source_with_handler<H: ?Sized + 'static, S: AsRawSource + 'static>(
        &mut self,
        mut source: S,
        interest: Interest,
        mut callback: impl FnMut(&mut H, &mut S, &mut Context<'_>, &Readiness) + 'static,
    ) -> io::Result<SourceId> {
        let wanted = TypeTag::of::<H>();
        let named = self.source_handler;
        match named {
            Some(named) if named != wanted && self.handler_still_named() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "sources on this loop were registered for a handler of type {}, \
                         not {}",
                        named.name, wanted.name
                    ),
                ))
            }
            _ => {}
        }
        let fd = source.raw_source();
        let callback: HandlerCallback<H> = Box::new(
            move |handler: &mut H, cx: &mut Context<'_>, event: &Readiness| {
                callback(handler, &mut source, cx, event)
            },
        );
        let id = self.add_source(
            fd,
            interest,
            Some(SourceCallback::WithHandler(Box::new(callback))),
        )?;
        self.source_handler = Some(wanted);
        Ok(id)
    }

    /// Refuses to run a turn with a handler other than the one the
    /// sources' callbacks were registered for: they could not be called.
    pub(crate) fn check_source_handler<H: ?Sized + 'static>(&mut self) -> io::Result<()> {
        let named = self.source_handler;
        match named {
            Some(named) if named != TypeTag::of::<H>() && self.handler_still_named() => {
                Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "sources on this loop were registered for a handler of type {}, \
                     but it is run with a {}",
                        named.name,
                        std::any::type_name::<H>()
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Whether a source's callback still needs the handler type named:
    /// once the last such source is gone, any handler will do, and the
    /// name is forgotten. Asked only when a turn or a registration names
    /// another type (a look at every source), and never while a callback
    /// is lent out, so none is missed.
    fn handler_still_named(&mut self) -> bool {
        let needed = self
            .sources
            .any_callback(|c| matches!(c, SourceCallback::WithHandler(_)));
        if !needed {
            self.source_handler = None;
        }
        needed
    }

    pub(crate) fn add_source(
        &mut self,
        fd: RawSource,
        interest: Interest,
        callback: Option<SourceCallback>,
    ) -> io::Result<SourceId> {
        let id = self.sources.next_id();
        self.backend.add(fd, id.token(), interest)?;
        self.sources.insert(id, fd, callback);
        Ok(id)
    }

    /// Deregisters a source (before its descriptor can be closed) and frees
    /// its slot; its id, and any event still queued for it, reach nothing
    /// from now on.
    pub(crate) fn remove_source(&mut self, id: SourceId) -> io::Result<()> {
        let Some((fd, callback)) = self.sources.remove(id) else {
            return Err(io::Error::new(io::ErrorKind::NotFound, "unknown source"));
        };
        // Deregistered while its descriptor is still open: the callback
        // may own it, and goes only now.
        let result = self.backend.delete(fd);
        drop(callback);
        result
    }

    pub(crate) fn on_source<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
        id: SourceId,
        event: Readiness,
    ) {
        if self
            .signals
            .as_ref()
            .is_some_and(|(_, source)| *source == id)
        {
            return self.on_signals(handler);
        }
        if !self.sources.contains(id) {
            // Deregistered (earlier in this batch, perhaps), its slot maybe
            // taken by another source: not for anyone now.
            self.stats.stale_events += 1;
            return;
        }
        if let Some(SourceCallback::Datagram(_)) = self.sources.get_mut(id) {
            return self.on_datagram_event(handler, id, &event);
        }
        self.current_source = Some(id);
        match self.sources.take_callback(id) {
            Some(SourceCallback::Call(mut callback)) => {
                self.call_hook(handler, "a source callback", |_, cx| callback(cx, &event));
                // Put it back unless the callback deregistered its source.
                self.sources
                    .restore_callback(id, SourceCallback::Call(callback));
            }
            Some(SourceCallback::WithHandler(mut callback)) => {
                // The type was checked when the turn began (run_once).
                if let Some(call) = callback.downcast_mut::<HandlerCallback<H>>() {
                    self.call_hook(handler, "a source callback", |h, cx| call(h, cx, &event));
                }
                self.sources
                    .restore_callback(id, SourceCallback::WithHandler(callback));
            }
            Some(datagram @ SourceCallback::Datagram(_)) => {
                self.sources.restore_callback(id, datagram); // routed above
            }
            None => {
                self.call_hook(handler, "on_source", |h, cx| h.on_source(cx, id, &event));
            }
        }
        self.current_source = None;
        self.run_close_hooks(handler);
    }

    /// Puts a source on the ready list, to be served next turn as if it
    /// had reported readable: `false` if it is on it already, or gone.
    pub(crate) fn list_source(&mut self, id: SourceId) -> bool {
        let listed = self.sources.list(id);
        if listed {
            self.ready.push(id.token());
        }
        listed
    }

    /// The signal pipe woke the loop: each signal that came goes to the
    /// handler.
    fn on_signals<I: 'static, H: Handler<I> + ?Sized + 'static>(&mut self, handler: &mut H) {
        let mut came = Vec::new();
        if let Some((pipe, _)) = self.signals.as_mut() {
            pipe.take(&mut came);
        }
        for signal in came {
            self.deliver_signal(handler, signal);
        }
    }

    /// Hands `signal` to the handler (from the pipe, or sent by a group).
    pub(crate) fn deliver_signal<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
        signal: Signal,
    ) {
        info!("caught {signal:?}");
        self.call_hook(handler, "on_signal", |h, cx| h.on_signal(cx, signal));
        self.run_close_hooks(handler);
    }
}
