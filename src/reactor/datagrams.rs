//! Datagram sockets on the loop: binding them, reading each one's
//! datagrams within a per-turn budget (a flood cannot starve the stream
//! connections), handing each to `Handler::on_datagram`, and sending the
//! answers, queued within a bound while the socket's buffer is full.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
#[cfg(unix)]
use std::path::Path;

#[cfg(unix)]
use socket2::{Domain, Protocol, Socket, Type};

use super::sources::SourceCallback;
use super::{Core, Reactor};
use crate::backend::Readiness;
use crate::handler::Handler;
use crate::sources::{DatagramPeer, Endpoint, Sent, BATCH};
use crate::token::SourceId;
use crate::Interest;

impl Reactor {
    /// Binds a UDP socket on the loop: each datagram that arrives goes to
    /// [`Handler::on_datagram`] with its sender's address, at most
    /// [`Config::datagram_budget`](crate::Config::datagram_budget) per
    /// socket per turn; answer with [`Context::send_to`](crate::Context::send_to).
    /// Its id is a [`SourceId`]: [`deregister_source`](Reactor::deregister_source)
    /// closes it.
    ///
    /// # Errors
    ///
    /// The address could not be bound, or the poller refused the socket.
    ///
    /// # Examples
    ///
    /// A UDP echo:
    ///
    /// ```
    /// use selectloop::{ConnId, Context, DatagramPeer, Handler, Reactor, SourceId};
    ///
    /// struct Echo;
    ///
    /// impl Handler for Echo {
    ///     fn on_datagram(&mut self, cx: &mut Context<'_>, socket: SourceId, from: &DatagramPeer, data: &[u8]) {
    ///         let _ = cx.send_to(socket, from, data);
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let socket = reactor.bind_udp("127.0.0.1:0")?;
    /// let addr = reactor.datagram_addr(socket).unwrap();
    /// let client = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// client.send_to(b"ping", addr)?;
    /// let mut answer = [0u8; 4];
    /// client.set_nonblocking(true)?;
    /// for _ in 0..100 {
    ///     reactor.run_once(&mut Echo, Some(std::time::Duration::from_millis(10)))?;
    ///     if client.recv(&mut answer).is_ok() {
    ///         break;
    ///     }
    /// }
    /// assert_eq!(&answer, b"ping");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind_udp(&mut self, addr: impl ToSocketAddrs) -> io::Result<SourceId> {
        self.core.bind_udp(first_addr(addr)?)
    }

    /// Like [`bind_udp`](Reactor::bind_udp), with `SO_REUSEPORT`: every
    /// loop of a [`Group`](crate::Group) binds its own socket on the same
    /// port (in [`GroupBuilder::setup`](crate::GroupBuilder::setup)), and
    /// the kernel spreads the datagrams by their sender.
    ///
    /// # Errors
    ///
    /// As [`bind_udp`](Reactor::bind_udp); `Unsupported` on Windows, which
    /// has no `SO_REUSEPORT`.
    pub fn bind_udp_reuseport(&mut self, addr: impl ToSocketAddrs) -> io::Result<SourceId> {
        let addr = first_addr(addr)?;
        #[cfg(windows)]
        {
            let _ = addr;
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "Windows has no SO_REUSEPORT: bind one UDP socket (bind_udp)",
            ))
        }
        #[cfg(unix)]
        {
            let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
            socket.set_reuse_port(true)?;
            socket.set_nonblocking(true)?;
            socket.bind(&addr.into())?;
            let socket = mio::net::UdpSocket::from_std(socket.into());
            self.core.add_datagram(Endpoint::udp(socket))
        }
    }

    /// A Unix datagram socket bound to `path`, served as
    /// [`bind_udp`](Reactor::bind_udp)'s are; its peers are named by path.
    ///
    /// Unix only: Windows has no Unix domain sockets in mio.
    ///
    /// # Errors
    ///
    /// The path could not be bound (it exists, a folder is missing), or
    /// the poller refused the socket.
    #[cfg(unix)]
    pub fn bind_unix_datagram(&mut self, path: impl AsRef<Path>) -> io::Result<SourceId> {
        let socket = mio::net::UnixDatagram::bind(path)?;
        self.core.add_datagram(Endpoint::unix(socket))
    }

    /// The address a UDP socket is bound to; `None` for other sources.
    pub fn datagram_addr(&mut self, socket: SourceId) -> Option<SocketAddr> {
        match self.core.sources.get_mut(socket) {
            Some(SourceCallback::Datagram(endpoint)) => endpoint.local_addr(),
            _ => None,
        }
    }
}

fn first_addr(addr: impl ToSocketAddrs) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind"))
}

impl Core {
    /// A UDP socket bound to `addr`, on the loop.
    pub(crate) fn bind_udp(&mut self, addr: SocketAddr) -> io::Result<SourceId> {
        let socket = mio::net::UdpSocket::bind(addr)?;
        self.add_datagram(Endpoint::udp(socket))
    }

    pub(crate) fn add_datagram(&mut self, endpoint: Endpoint) -> io::Result<SourceId> {
        let fd = endpoint.raw_source();
        self.add_source(
            fd,
            Interest::READABLE,
            Some(SourceCallback::Datagram(endpoint)),
        )
    }

    /// Sends `data` to `to` from `socket`, now or once the socket's buffer
    /// has room.
    pub(crate) fn send_datagram(
        &mut self,
        socket: SourceId,
        to: &DatagramPeer,
        data: &[u8],
    ) -> io::Result<()> {
        let max_queued = self.config.datagram_queue_bytes;
        let Some(SourceCallback::Datagram(endpoint)) = self.sources.get_mut(socket) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no such datagram socket",
            ));
        };
        let first_queued = !endpoint.has_queued();
        match endpoint.send_to(data, to, max_queued) {
            Ok(Sent::Now) => {
                self.stats.datagrams_out += 1;
                Ok(())
            }
            // Counted when the batch's answers go.
            Ok(Sent::Batched) => Ok(()),
            Ok(Sent::Queued) => {
                if first_queued {
                    // Watch for room; dropped again once the queue is out.
                    let fd = endpoint.raw_source();
                    let both = Interest::READABLE | Interest::WRITABLE;
                    self.backend.modify(fd, socket.token(), both)?;
                }
                Ok(())
            }
            Err(e) => {
                self.stats.datagrams_dropped += 1;
                Err(e)
            }
        }
    }

    pub(crate) fn on_datagram_event<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
        socket: SourceId,
        event: &Readiness,
    ) {
        if event.writable || event.error {
            self.flush_datagrams(socket);
        }
        if event.readable || event.error {
            self.serve_datagrams(handler, socket);
        }
    }

    /// Reads and hands over up to the budget's worth of datagrams, many
    /// per system call where the system allows; a socket that may have
    /// more goes on the ready list for the next turn.
    pub(crate) fn serve_datagrams<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
        socket: SourceId,
    ) {
        let mut batch = self.datagram_batch.take().unwrap_or_default();
        let mut left = self.config.datagram_budget;
        let drained = loop {
            if left == 0 {
                break false;
            }
            let Some(SourceCallback::Datagram(endpoint)) = self.sources.get_mut(socket) else {
                break true; // deregistered by a hook
            };
            let asked = left.min(BATCH);
            let got = match endpoint.recv_batch(&mut batch, asked) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // An ICMP error for an earlier send (its peer gone):
                    // about that peer, not this socket.
                    debug!("datagram socket {socket:?}: {e}");
                    left -= 1;
                    continue;
                }
            };
            left -= got.min(left);
            endpoint.begin_batch();
            for i in 0..got {
                self.stats.datagrams_in += 1;
                let (data, from) = batch.get(i);
                self.call_hook(handler, "on_datagram", |h, cx| {
                    h.on_datagram(cx, socket, from, data);
                });
                self.run_close_hooks(handler);
            }
            self.end_datagram_batch(socket);
            if got < asked {
                // Fewer than asked for: the socket has no more now.
                break true;
            }
        };
        self.datagram_batch = Some(batch);
        // Budget spent with datagrams perhaps left: edge-triggered polling
        // would not report them again, so the ready list does.
        if !drained && self.list_source(socket) {
            self.stats.budget_exhausted += 1;
        }
    }

    /// Sends the answers the handler gave to a batch, together; if some
    /// had to wait, watches the socket for room.
    fn end_datagram_batch(&mut self, socket: SourceId) {
        let Some(SourceCallback::Datagram(endpoint)) = self.sources.get_mut(socket) else {
            return; // deregistered by a hook: its answers went with it
        };
        let was_queued = endpoint.has_queued();
        let (mut sent, mut failed) = (0, 0);
        endpoint.end_batch(&mut sent, &mut failed);
        self.stats.datagrams_out += sent;
        self.stats.datagrams_dropped += failed;
        if !was_queued && endpoint.has_queued() {
            let fd = endpoint.raw_source();
            let both = Interest::READABLE | Interest::WRITABLE;
            let _ = self.backend.modify(fd, socket.token(), both);
        }
    }

    fn flush_datagrams(&mut self, socket: SourceId) {
        let Some(SourceCallback::Datagram(endpoint)) = self.sources.get_mut(socket) else {
            return;
        };
        let (mut sent, mut failed) = (0, 0);
        let emptied = endpoint.flush(&mut sent, &mut failed);
        let fd = endpoint.raw_source();
        self.stats.datagrams_out += sent;
        self.stats.datagrams_dropped += failed;
        if emptied {
            let _ = self.backend.modify(fd, socket.token(), Interest::READABLE);
        }
    }
}
