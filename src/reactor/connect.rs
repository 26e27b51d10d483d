//! Outbound connections: a non-blocking `connect`, its completion seen as
//! WRITABLE and checked with `SO_ERROR`, and a deadline for each.

use std::io;
use std::net::SocketAddr;
#[cfg(unix)]
use std::path::Path;
use std::time::Instant;

use crate::close::CloseReason;
use crate::conn::OUTBOUND;
use crate::conn::{Farewell, Lifecycle, ReadEvent};
use crate::handler::Handler;
use crate::reactor::Core;
use crate::schedule::deadline_after;
use crate::stream::Stream;
use crate::token::{self, ConnId};

impl Core {
    pub(crate) fn connect_tcp(&mut self, addr: SocketAddr) -> io::Result<ConnId> {
        let stream = mio::net::TcpStream::connect(addr)?;
        self.adopt_outbound(Stream::Tcp(stream))
    }

    #[cfg(unix)]
    pub(crate) fn connect_unix(&mut self, path: &Path) -> io::Result<ConnId> {
        let stream = mio::net::UnixStream::connect(path)?;
        self.adopt_outbound(Stream::Unix(stream))
    }

    fn adopt_outbound(&mut self, stream: Stream) -> io::Result<ConnId> {
        if self.conns.open() >= self.max_connections.min(token::MAX_SLOTS) {
            return Err(io::Error::other(
                "connection cap (Config::max_connections) reached",
            ));
        }
        let id = self.insert_conn(stream, OUTBOUND, true)?;
        let deadline = deadline_after(Instant::now(), self.config.connect_timeout);
        self.connects.insert(deadline, id);
        Ok(id)
    }

    /// A connecting socket reported writable (or an error): see how the
    /// connect went.
    pub(crate) fn finish_connect<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
        id: ConnId,
    ) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        match conn.socket().take_error() {
            Ok(None) => {}
            Ok(Some(error)) | Err(error) => {
                self.close(id, CloseReason::ConnectFailed(error));
                self.run_close_hooks(handler);
                return;
            }
        }
        if !conn.socket().is_connected() {
            return; // a spurious wake-up: still connecting
        }
        #[cfg(target_os = "linux")]
        if let Err(error) = self.serve_by_ring(id) {
            warn!("{id}: connected, but cannot hand it to io_uring: {error}");
            self.close(id, CloseReason::Error(error));
            self.run_close_hooks(handler);
            return;
        }
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if self.config.nodelay {
            conn.socket().set_nodelay();
        }
        let Lifecycle::Connecting { then_close } = conn.state().lifecycle() else {
            return;
        };
        let has_output = conn.has_output();
        self.connects.remove(id);
        self.stats.connects += 1;
        if then_close {
            // The handler let go of it before it opened: write what it
            // queued, then close. It never opened for the handler, so
            // `on_connect` is not called; `on_close` is, once.
            self.conns
                .set_lifecycle(id, Lifecycle::Closing(Farewell::ByHandler));
            self.update_interest(id);
            self.queue_flush(id);
            return;
        }
        self.conns.set_lifecycle(id, Lifecycle::Open);
        self.conns.read_event(id, ReadEvent::Connected);
        self.update_interest(id);
        if has_output {
            self.queue_flush(id);
        }
        if !self.call_hook(handler, "on_connect", |h, cx| h.on_connect(cx, id)) {
            self.close(id, CloseReason::HandlerPanic);
        }
        self.run_close_hooks(handler);
    }

    /// With io_uring, a connection that has just connected is served by
    /// the ring from now on, as an accepted one is: the poll that saw the
    /// connect complete goes, and the ring takes its registration.
    #[cfg(target_os = "linux")]
    fn serve_by_ring(&mut self, id: ConnId) -> io::Result<()> {
        let (Some(streams), Some(conn)) = (&self.streams, self.conns.get_mut(id)) else {
            return Ok(());
        };
        if matches!(conn.socket(), Stream::Ring(_)) {
            return Ok(());
        }
        let fd = conn.socket().raw_source();
        let interest = conn.interest();
        if interest.is_some() {
            self.backend.delete(fd)?;
        }
        if let Err(error) = conn.socket_mut().serve_in_place(streams) {
            conn.set_interest(None);
            return Err(error);
        }
        if let Some(interest) = interest {
            self.backend.add(fd, id.token(), interest)?;
        }
        Ok(())
    }

    /// Fails the connects that passed their deadline.
    pub(crate) fn expire_connects(&mut self, now: Instant) {
        while let Some(id) = self.connects.pop_due(now) {
            if self
                .conns
                .get(id)
                .is_some_and(|c| c.state().is_connecting())
            {
                let error = io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connect timed out (Config::connect_timeout)",
                );
                self.close(id, CloseReason::ConnectFailed(error));
            }
        }
    }
}
