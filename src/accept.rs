//! Listeners: binding, phase 4 (accept until `WouldBlock` or the budget),
//! pausing a listener whose `accept` fails and resuming it after a back-off,
//! and refusing connections over the cap.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener as StdListener, ToSocketAddrs};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::Instant;

use mio::net::{TcpListener, UnixListener};
use socket2::{Domain, Protocol, Socket, Type};

use crate::close::CloseReason;
use crate::core::Core;
use crate::handler::Handler;
use crate::limits::{self, Limit};
use crate::stream::{ListenSocket, Stream};
use crate::timer;
use crate::token::{self, ListenerId};
use crate::Interest;

#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) socket: ListenSocket,
    /// The bound address of a TCP listener.
    pub(crate) addr: Option<SocketAddr>,
    /// How logs name it: the address or the path.
    pub(crate) name: String,
    /// Deregistered until then, after an `accept` error.
    paused_until: Option<Instant>,
}

/// The listening sockets, by [`ListenerId`]; `None` once closed by a
/// shutdown. Ids are never reused.
#[derive(Debug, Default)]
pub(crate) struct Listeners {
    slots: Vec<Option<Listener>>,
}

impl Listeners {
    pub(crate) fn get(&self, id: ListenerId) -> Option<&Listener> {
        self.slots.get(id.0).and_then(Option::as_ref)
    }

    /// Listeners registered and accepting: their part of `len(inputs)`.
    pub(crate) fn accepting(&self) -> usize {
        self.live().filter(|l| l.paused_until.is_none()).count()
    }

    pub(crate) fn live(&self) -> impl Iterator<Item = &Listener> {
        self.slots.iter().flatten()
    }

    /// When the first paused listener is due to be armed again.
    pub(crate) fn resume_at(&self) -> Option<Instant> {
        self.live().filter_map(|l| l.paused_until).min()
    }

    /// A descriptor was freed: paused listeners may try again now.
    pub(crate) fn resume_early(&mut self, now: Instant) {
        for listener in self.slots.iter_mut().flatten() {
            if let Some(at) = &mut listener.paused_until {
                *at = (*at).min(now);
            }
        }
    }

    /// Closes them all (a shutdown), returning them so that the caller can
    /// deregister the ones still registered.
    pub(crate) fn take_all(&mut self) -> Vec<Listener> {
        self.slots.iter_mut().filter_map(Option::take).collect()
    }
}

impl Listener {
    fn is_paused(&self) -> bool {
        self.paused_until.is_some()
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
    pub(crate) fn listen(&mut self, addr: impl ToSocketAddrs) -> io::Result<ListenerId> {
        let mut last_error = None;
        for addr in addr.to_socket_addrs()? {
            match bind(addr, self.config.backlog) {
                Ok(listener) => return self.add_listener(listener),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "address resolved to nothing")
        }))
    }

    pub(crate) fn add_listener(&mut self, listener: StdListener) -> io::Result<ListenerId> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let socket = ListenSocket::Tcp(TcpListener::from_std(listener));
        self.add_listen_socket(socket, Some(addr))
    }

    pub(crate) fn listen_unix(&mut self, path: &Path) -> io::Result<ListenerId> {
        let is_socket = std::fs::symlink_metadata(path)
            .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()));
        if is_socket {
            // A live server answers there: never steal its path. Only a file
            // nobody listens on (left by a crash) is replaced.
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is in use: a server answers there", path.display()),
                ));
            }
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
        let id = ListenerId(self.listeners.slots.len());
        let token = token::listener_token(id);
        self.backend
            .add(socket.as_raw_fd(), token, Interest::READABLE)?;
        let name = match (&addr, socket.path()) {
            (Some(addr), _) => addr.to_string(),
            (None, Some(path)) => path.display().to_string(),
            (None, None) => String::from("listener"),
        };
        debug!("listening on {name} ({})", self.backend.name());
        self.listeners.slots.push(Some(Listener {
            socket,
            addr,
            name,
            paused_until: None,
        }));
        Ok(id)
    }

    /// Phase 4: accept until `WouldBlock` or the budget is spent.
    pub(crate) fn accept<H: Handler + ?Sized>(&mut self, handler: &mut H, listener: ListenerId) {
        for _ in 0..self.config.accept_budget {
            let Some(entry) = self.listeners.get(listener) else {
                return;
            };
            if entry.is_paused() {
                return;
            }
            match entry.socket.accept() {
                Ok(stream) => self.adopt(handler, stream, listener.0 as u32),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // The client gave up before we got to it, or a signal: next.
                Err(e) if limits::is_transient_accept_error(&e) => {}
                Err(e) => {
                    self.accept_failed(listener, &e);
                    return;
                }
            }
        }
        // More may be queued, and no new edge will say so.
        self.stats.budget_exhausted += 1;
        self.ready.push(token::listener_token(listener));
    }

    /// Out of descriptors, or something unknown: retrying now would fail the
    /// same way at full CPU. This listener pauses; the others go on (they
    /// pause too if they fail the same way).
    pub(crate) fn accept_failed(&mut self, id: ListenerId, error: &io::Error) {
        if limits::is_resource_exhaustion(error) {
            self.stats.accept_pauses += 1;
        } else {
            self.stats.accept_errors += 1;
        }
        let backoff = self.config.accept_backoff;
        let resume_at = timer::deadline_after(Instant::now(), backoff);
        let Some(listener) = self.listeners.slots.get_mut(id.0).and_then(Option::as_mut) else {
            return;
        };
        if listener.paused_until.is_none() {
            if let Err(e) = self.backend.delete(listener.socket.as_raw_fd()) {
                debug!("pausing listener {}: {e}", listener.name);
            }
        }
        listener.paused_until = Some(resume_at);
        let name = listener.name.clone();
        self.limit_hit(
            Limit::AcceptBackoff,
            format_args!("accept on {name} failed: {error}; it pauses for {backoff:?}"),
        );
    }

    /// Re-arms the listeners whose back-off has ended.
    pub(crate) fn resume_listeners(&mut self, now: Instant) {
        for (index, slot) in self.listeners.slots.iter_mut().enumerate() {
            let Some(listener) = slot else { continue };
            if listener.paused_until.is_none_or(|at| at > now) {
                continue;
            }
            let token = token::listener_token(ListenerId(index));
            match self
                .backend
                .add(listener.socket.as_raw_fd(), token, Interest::READABLE)
            {
                Ok(()) => {
                    listener.paused_until = None;
                    // Connections may have queued meanwhile: try at once.
                    self.ready.push(token);
                }
                Err(e) => {
                    warn!("cannot re-arm listener {}: {e}", listener.name);
                    listener.paused_until =
                        Some(timer::deadline_after(now, self.config.accept_backoff));
                }
            }
        }
    }

    /// Inserts an accepted connection: `inputs.append(conn)` and the greeting.
    /// `origin`: the listener's index, or `ADOPTED`.
    pub(crate) fn adopt<H: Handler + ?Sized>(
        &mut self,
        handler: &mut H,
        stream: Stream,
        origin: u32,
    ) {
        if self.conns.open() >= self.max_connections.min(token::MAX_SLOTS) {
            self.reject(stream);
            return;
        }
        if self.config.nodelay {
            stream.set_nodelay();
        }
        let Ok(id) = self.insert_conn(stream, origin, false) else {
            return;
        };
        self.stats.accepted += 1;
        if !self.call_hook(handler, "on_connect", |h, cx| h.on_connect(cx, id)) {
            self.close(id, CloseReason::HandlerPanic);
        }
        self.run_close_hooks(handler);
    }

    /// Over the cap: a best-effort farewell, then the socket is dropped.
    fn reject(&mut self, mut stream: Stream) {
        self.stats.rejected += 1;
        if let Some(message) = &self.config.reject_message {
            // Never waited for: a fresh socket's buffer takes a short line.
            let _ = stream.write(message);
        }
        let peer = stream.peer_name();
        drop(stream);
        let cap = self.max_connections;
        self.limit_hit(
            Limit::MaxConnections,
            format_args!("{cap} connections open; connection from {peer} refused"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MioBackend;
    use crate::config::Config;

    fn core() -> Core {
        let config = Config::new();
        let backend = MioBackend::new(64).unwrap();
        Core::new(config, Box::new(backend))
    }

    /// An accept error used to pause every listener; only the one that
    /// failed may pause.
    #[test]
    fn an_accept_error_pauses_only_the_listener_that_failed() {
        let mut core = core();
        let a = core.listen("127.0.0.1:0").unwrap();
        let b = core.listen("127.0.0.1:0").unwrap();
        assert_eq!(core.inputs(), 2);
        core.accept_failed(a, &io::Error::from_raw_os_error(libc::EMFILE));
        assert!(core.listeners.get(a).unwrap().is_paused());
        assert!(!core.listeners.get(b).unwrap().is_paused());
        assert_eq!(core.inputs(), 1);
        assert_eq!(core.stats.accept_pauses, 1);
        // An unknown error pauses too, and is counted apart.
        core.accept_failed(b, &io::Error::from_raw_os_error(libc::EINVAL));
        assert_eq!((core.inputs(), core.stats.accept_errors), (0, 1));
        // Both are armed again when their back-off ends.
        core.resume_listeners(Instant::now() + core.config.accept_backoff);
        assert_eq!(core.inputs(), 2);
    }

    #[test]
    fn a_huge_accept_backoff_saturates_instead_of_panicking() {
        let config = Config::new().accept_backoff(std::time::Duration::MAX);
        let mut core = Core::new(config, Box::new(MioBackend::new(64).unwrap()));
        let a = core.listen("127.0.0.1:0").unwrap();
        core.accept_failed(a, &io::Error::from_raw_os_error(libc::EMFILE));
        assert!(core.listeners.resume_at().unwrap() > Instant::now());
    }

    #[test]
    fn listen_unix_refuses_a_path_a_live_server_answers_on() {
        let dir = std::env::temp_dir().join(format!("selectloop-unix-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("live.sock");
        let _ = std::fs::remove_file(&path);
        let mut first = core();
        first.listen_unix(&path).unwrap();
        let mut second = core();
        let refused = second.listen_unix(&path).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::AddrInUse);
        assert!(path.exists(), "the live server's socket file was removed");
        std::os::unix::net::UnixStream::connect(&path).expect("the first server still answers");
        // A file nobody listens on any more (its server gone without
        // removing it) is replaced.
        drop(first);
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        second
            .listen_unix(&path)
            .expect("a stale socket file is replaced");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
