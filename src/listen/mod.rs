//! Listeners: binding (with a real backlog, through socket2), accepting,
//! pausing a listener whose `accept` fails and arming it again, and the
//! spare descriptor that sheds connections when descriptors run out.
//!
//! Owns: the listening sockets by [`ListenerId`], each one's pause and its
//! place on the turn's ready list, and the spare descriptor.
//!
//! May not touch: connections, the handler or the timers. It registers and
//! deregisters its own sockets with the backend it is lent; what an
//! accepted socket becomes is the loop's business.

mod reserve;

use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::time::Instant;

use socket2::{Domain, Protocol, Socket, Type};

pub(crate) use reserve::Reserve;

use crate::backend::{Backend, Streams};
#[cfg(target_os = "linux")]
use crate::backend::{Next, RingListener};
use crate::stream::{ListenSocket, Stream};
use crate::token::{self, ListenerId, Token};
use crate::Interest;

#[derive(Debug)]
struct Listener {
    socket: ListenSocket,
    /// The bound address of a TCP listener.
    addr: Option<SocketAddr>,
    /// How logs name it: the address or the path.
    name: String,
    /// Deregistered until then, after an `accept` error.
    paused_until: Option<Instant>,
    /// On the turn's ready list already (an accept storm must not list it
    /// once per event).
    listed: bool,
    /// The sockets it accepts have TCP_NODELAY from it (Linux copies the
    /// listener's), so the loop need not set it on each.
    gives_nodelay: bool,
    /// With io_uring, the ring accepts its connections (a multishot
    /// accept), and `accept` takes them from the ring's queue.
    #[cfg(target_os = "linux")]
    ring: Option<RingListener>,
}

/// The listening sockets, by [`ListenerId`]; `None` once closed by a
/// shutdown. Ids are never reused.
#[derive(Debug, Default)]
pub(crate) struct Listeners {
    slots: Vec<Option<Listener>>,
}

impl Listener {
    /// One `accept`: from the ring's queue where the ring accepts, else
    /// (or while the ring does not) the system call.
    fn accept(&self) -> io::Result<Stream> {
        #[cfg(target_os = "linux")]
        if let Some(ring) = &self.ring {
            return match ring.next() {
                Next::Stream(stream) => Ok(Stream::Ring(stream)),
                Next::Failed(error) => Err(error),
                Next::Nothing => Err(io::ErrorKind::WouldBlock.into()),
                Next::AcceptYourself => self.socket.accept(),
            };
        }
        self.socket.accept()
    }
}

/// What one `accept` on a listener gave.
#[derive(Debug)]
pub(crate) enum Accepted {
    /// A connection.
    Stream(Stream),
    /// Nothing to accept: the listener is gone, paused, or has no
    /// connection waiting.
    Nothing,
    /// The connection went away before it was accepted, or a signal: try
    /// the next.
    Transient,
    /// `accept` failed; the listener should pause.
    Failed(io::Error),
}

/// Binds a TCP listener with `backlog`, non-blocking.
pub(crate) fn bind(addr: SocketAddr, backlog: i32) -> io::Result<StdListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

impl Listeners {
    /// Registers `socket` for READABLE and adds it under a new id; with
    /// `streams` (io_uring's), the ring accepts its connections.
    pub(crate) fn add(
        &mut self,
        socket: ListenSocket,
        addr: Option<SocketAddr>,
        backend: &mut dyn Backend,
        streams: Option<&Streams>,
    ) -> io::Result<ListenerId> {
        let id = ListenerId(self.slots.len());
        #[cfg(target_os = "linux")]
        let ring =
            streams.map(|streams| streams.listen(socket.raw_source(), socket.path().is_some()));
        #[cfg(not(target_os = "linux"))]
        let _ = streams;
        backend.add(
            socket.raw_source(),
            token::listener_token(id),
            Interest::READABLE,
        )?;
        let name = match (&addr, socket.path()) {
            (Some(addr), _) => addr.to_string(),
            (None, Some(path)) => path.display().to_string(),
            (None, None) => String::from("listener"),
        };
        debug!("listening on {name} ({})", backend.name());
        self.slots.push(Some(Listener {
            socket,
            addr,
            name,
            paused_until: None,
            listed: false,
            gives_nodelay: false,
            #[cfg(target_os = "linux")]
            ring,
        }));
        Ok(id)
    }

    fn get(&self, id: ListenerId) -> Option<&Listener> {
        self.slots.get(id.0).and_then(Option::as_ref)
    }

    fn get_mut(&mut self, id: ListenerId) -> Option<&mut Listener> {
        self.slots.get_mut(id.0).and_then(Option::as_mut)
    }

    fn live(&self) -> impl Iterator<Item = &Listener> {
        self.slots.iter().flatten()
    }

    /// The sockets `id` accepts have TCP_NODELAY already.
    pub(crate) fn set_gives_nodelay(&mut self, id: ListenerId) {
        if let Some(listener) = self.get_mut(id) {
            listener.gives_nodelay = true;
        }
    }

    /// Whether a socket from `origin` (a listener's index, or a
    /// connection adopted or opened) has TCP_NODELAY from its listener.
    pub(crate) fn gives_nodelay(&self, origin: u32) -> bool {
        self.get(ListenerId(origin as usize))
            .is_some_and(|l| l.gives_nodelay)
    }

    /// How many listeners are open.
    pub(crate) fn len(&self) -> usize {
        self.live().count()
    }

    pub(crate) fn local_addr(&self, id: ListenerId) -> Option<SocketAddr> {
        self.get(id).and_then(|l| l.addr)
    }

    pub(crate) fn local_path(&self, id: ListenerId) -> Option<&std::path::Path> {
        self.get(id).and_then(|l| l.socket.path())
    }

    /// The name logs give the listener.
    pub(crate) fn name(&self, id: ListenerId) -> &str {
        self.get(id).map_or("a closed listener", |l| &l.name)
    }

    /// Listeners registered and accepting: their part of `len(inputs)`.
    pub(crate) fn accepting(&self) -> usize {
        self.live().filter(|l| l.paused_until.is_none()).count()
    }

    #[cfg(all(test, unix))]
    pub(crate) fn raw_fd(&self, id: ListenerId) -> Option<crate::sys::RawSource> {
        self.get(id).map(|l| l.socket.raw_source())
    }

    #[cfg(test)]
    pub(crate) fn is_paused(&self, id: ListenerId) -> bool {
        self.get(id).is_some_and(|l| l.paused_until.is_some())
    }

    /// Accepts one connection from `id`.
    pub(crate) fn accept(&self, id: ListenerId) -> Accepted {
        let Some(listener) = self.get(id).filter(|l| l.paused_until.is_none()) else {
            return Accepted::Nothing;
        };
        match listener.accept() {
            Ok(stream) => Accepted::Stream(stream),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Accepted::Nothing,
            Err(e) if crate::limits::is_transient_accept_error(&e) => Accepted::Transient,
            Err(e) => Accepted::Failed(e),
        }
    }

    /// Puts `id` on the ready list once: `true` if the caller should push
    /// its token, `false` if it is listed already (or gone).
    pub(crate) fn list(&mut self, id: ListenerId) -> bool {
        match self.get_mut(id) {
            Some(listener) if !listener.listed => {
                listener.listed = true;
                true
            }
            _ => false,
        }
    }

    /// `id` was taken off the ready list to be served.
    pub(crate) fn unlist(&mut self, id: ListenerId) {
        if let Some(listener) = self.get_mut(id) {
            listener.listed = false;
        }
    }

    /// Deregisters `id` until `until` (an `accept` error). Returns its
    /// name, or `None` if it is gone.
    pub(crate) fn pause(
        &mut self,
        id: ListenerId,
        until: Instant,
        backend: &mut dyn Backend,
    ) -> Option<String> {
        let listener = self.get_mut(id)?;
        if listener.paused_until.is_none() {
            if let Err(e) = backend.delete(listener.socket.raw_source()) {
                debug!("pausing listener {}: {e}", listener.name);
            }
        }
        listener.paused_until = Some(until);
        Some(listener.name.clone())
    }

    /// When the first paused listener is due to be armed again.
    pub(crate) fn resume_at(&self) -> Option<Instant> {
        self.live().filter_map(|l| l.paused_until).min()
    }

    /// A descriptor was freed: paused listeners may try again now, and
    /// a ring that stopped accepting for want of them accepts again.
    pub(crate) fn resume_early(&mut self, now: Instant) {
        for listener in self.slots.iter_mut().flatten() {
            if let Some(at) = &mut listener.paused_until {
                *at = (*at).min(now);
            }
            #[cfg(target_os = "linux")]
            if let Some(ring) = &listener.ring {
                ring.descriptor_freed();
            }
        }
    }

    /// Registers again the listeners whose pause has ended, and calls
    /// `rearmed` with the token of each (connections may have queued
    /// meanwhile: the caller lists them). One that cannot be registered
    /// stays paused until `retry_at`.
    pub(crate) fn resume_due(
        &mut self,
        now: Instant,
        retry_at: Instant,
        backend: &mut dyn Backend,
        mut rearmed: impl FnMut(Token),
    ) {
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let Some(listener) = slot else { continue };
            if listener.paused_until.is_none_or(|at| at > now) {
                continue;
            }
            let token = token::listener_token(ListenerId(index));
            match backend.add(listener.socket.raw_source(), token, Interest::READABLE) {
                Ok(()) => {
                    listener.paused_until = None;
                    if !listener.listed {
                        listener.listed = true;
                        rearmed(token);
                    }
                }
                Err(e) => {
                    warn!("cannot re-arm listener {}: {e}", listener.name);
                    listener.paused_until = Some(retry_at);
                }
            }
        }
    }

    /// Closes them all (a shutdown), deregistering the ones registered.
    pub(crate) fn close_all(&mut self, backend: &mut dyn Backend) {
        for listener in self.slots.iter_mut().filter_map(Option::take) {
            if listener.paused_until.is_none() {
                let _ = backend.delete(listener.socket.raw_source());
            }
            debug!("stopped listening on {}", listener.name);
        }
    }
}
