//! The embedder's sources and the signals it catches: registering their
//! descriptors, and calling a source's callback (or the handler's
//! `on_source`, or `on_signal` for the signal pipe) when one is ready.

use std::io;
use std::os::unix::io::{AsRawFd, RawFd};

use super::{Core, Reactor};
use crate::backend::Readiness;
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
        source: S,
        interest: Interest,
        callback: impl FnMut(&mut S, &mut Context<'_>, &Readiness) + 'static,
    ) -> io::Result<SourceId> {
        self.core.add_source_with(source, interest, callback)
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
    /// # Errors
    ///
    /// The pipe could not be made or registered, or a handler installed.
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
                .add_source(pipe.as_raw_fd(), Interest::READABLE, None)?;
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

/// What serves one source (none: the handler's `on_source` does).
pub(crate) enum SourceCallback {
    /// A callback of the embedder's.
    Call(Callback),
    /// A datagram socket, whose datagrams go to `Handler::on_datagram`.
    Datagram(Endpoint),
}

impl Core {
    /// Takes ownership of `source` and serves it with `callback`.
    pub(crate) fn add_source_with<S: AsRawFd + 'static>(
        &mut self,
        mut source: S,
        interest: Interest,
        mut callback: impl FnMut(&mut S, &mut Context<'_>, &Readiness) + 'static,
    ) -> io::Result<SourceId> {
        let fd = source.as_raw_fd();
        let callback = Box::new(move |cx: &mut Context<'_>, event: &Readiness| {
            callback(&mut source, cx, event)
        });
        self.add_source(fd, interest, Some(SourceCallback::Call(callback)))
    }

    pub(crate) fn add_source(
        &mut self,
        fd: RawFd,
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

    pub(crate) fn on_source<I: 'static, H: Handler<I> + ?Sized>(
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
    fn on_signals<I: 'static, H: Handler<I> + ?Sized>(&mut self, handler: &mut H) {
        let mut came = Vec::new();
        if let Some((pipe, _)) = self.signals.as_mut() {
            pipe.take(&mut came);
        }
        for signal in came {
            self.deliver_signal(handler, signal);
        }
    }

    /// Hands `signal` to the handler (from the pipe, or sent by a group).
    pub(crate) fn deliver_signal<I: 'static, H: Handler<I> + ?Sized>(
        &mut self,
        handler: &mut H,
        signal: Signal,
    ) {
        info!("caught {signal:?}");
        self.call_hook(handler, "on_signal", |h, cx| h.on_signal(cx, signal));
        self.run_close_hooks(handler);
    }
}
