//! What the example servers share: stopping gracefully on SIGINT and SIGTERM.
//!
//! signal-hook writes a byte to a socket pair when a signal arrives (all a
//! signal handler may safely do); the reactor watches the other end like any
//! socket, so the signal is handled in the loop, between turns, with no
//! shared flag to poll and no race with a blocking `epoll_wait`.

use std::io::{self, Read};
use std::os::unix::net::UnixStream;

use selectloop::backend::Readiness;
use selectloop::{CloseReason, ConnId, Context, Handler, Interest, Reactor, SourceId, TimerId};

/// Wraps a handler so that SIGINT or SIGTERM stops [`Reactor::run`].
pub struct StopOnSignal<H> {
    inner: H,
    pipe: UnixStream,
    source: SourceId,
}

impl<H: Handler> StopOnSignal<H> {
    pub fn new(reactor: &mut Reactor, inner: H) -> io::Result<StopOnSignal<H>> {
        let (pipe, notifier) = UnixStream::pair()?;
        pipe.set_nonblocking(true)?;
        notifier.set_nonblocking(true)?;
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::low_level::pipe::register(signal, notifier.try_clone()?)?;
        }
        let source = reactor.register_source(&pipe, Interest::READABLE)?;
        Ok(StopOnSignal {
            inner,
            pipe,
            source,
        })
    }
}

impl<H: Handler> Handler for StopOnSignal<H> {
    fn on_connect(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        self.inner.on_connect(cx, conn)
    }

    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
        self.inner.on_message(cx, conn, msg)
    }

    fn on_close(&mut self, cx: &mut Context<'_>, conn: ConnId, reason: &CloseReason) {
        self.inner.on_close(cx, conn, reason)
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, timer: TimerId) {
        self.inner.on_timer(cx, timer)
    }

    fn on_drained(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        self.inner.on_drained(cx, conn)
    }

    fn on_notify(&mut self, cx: &mut Context<'_>, message: Box<dyn std::any::Any + Send>) {
        self.inner.on_notify(cx, message)
    }

    fn on_source(&mut self, cx: &mut Context<'_>, source: SourceId, event: &Readiness) {
        if source != self.source {
            return self.inner.on_source(cx, source, event);
        }
        // Drain the pipe (edge-triggered: until WouldBlock), then stop.
        let mut buf = [0u8; 64];
        while matches!(self.pipe.read(&mut buf), Ok(n) if n > 0) {}
        cx.stop();
    }
}

/// 127.0.0.1:8088, the seed's address.
#[allow(dead_code)]
pub fn default_addr() -> std::net::SocketAddr {
    ([127, 0, 0, 1], 8088).into()
}

/// A command-line error as an `io::Error`.
#[allow(dead_code)]
pub fn invalid(e: lexopt::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
}

/// The next flag value, parsed.
#[allow(dead_code)]
pub fn value<T>(parser: &mut lexopt::Parser) -> io::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let raw = parser.value().map_err(invalid)?;
    let text = raw.to_string_lossy().into_owned();
    text.parse()
        .map_err(|e: T::Err| io::Error::new(io::ErrorKind::InvalidInput, format!("{text:?}: {e}")))
}

/// `--addr HOST:PORT` as the only flag, default 127.0.0.1:8088.
#[allow(dead_code)]
pub fn parse_addr() -> io::Result<std::net::SocketAddr> {
    let mut addr = default_addr();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(invalid)? {
        use lexopt::prelude::*;
        match arg {
            Long("addr") => addr = value(&mut parser)?,
            other => return Err(invalid(other.unexpected())),
        }
    }
    Ok(addr)
}

/// Prints the bound address on the first line, as every example does.
#[allow(dead_code)]
pub fn announce(reactor: &Reactor, listener: selectloop::ListenerId) -> io::Result<()> {
    let bound = reactor
        .local_addr(listener)
        .ok_or_else(|| io::Error::other("listener has no address"))?;
    println!("listening on {bound}");
    Ok(())
}
