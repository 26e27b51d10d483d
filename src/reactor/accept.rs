//! Phase 4 and its edges: binding listeners, accepting until `WouldBlock`
//! or the budget, what an `accept` error does (pause, or shed with the
//! spare descriptor), and refusing connections over the cap.

use std::io;
use std::net::{SocketAddr, TcpListener as StdListener, ToSocketAddrs};
#[cfg(unix)]
use std::path::Path;
use std::time::Instant;

use mio::net::TcpListener;
#[cfg(unix)]
use mio::net::UnixListener;

use super::Core;
use crate::close::CloseReason;
use crate::config::EmfilePolicy;
use crate::handler::Handler;
use crate::limits::{self, Limit};
use crate::listen::{bind, Accepted};
use crate::schedule::deadline_after;
use crate::stream::{ListenSocket, Stream};
use crate::token::{self, ListenerId};

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
        // Linux gives the sockets a listener accepts its TCP_NODELAY: set
        // once here, it spares a system call on every connection.
        let inherits_nodelay = cfg!(any(target_os = "linux", target_os = "android"))
            && self.config.nodelay
            && socket2::SockRef::from(&listener).set_nodelay(true).is_ok();
        let socket = ListenSocket::Tcp(TcpListener::from_std(listener));
        let id = self.add_listen_socket(socket, Some(addr))?;
        if inherits_nodelay {
            self.listeners.set_gives_nodelay(id);
        }
        Ok(id)
    }

    #[cfg(unix)]
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
        let streams = self.streams.as_ref();
        self.listeners
            .add(socket, addr, &mut *self.backend, streams)
    }

    /// Phase 4: accept until `WouldBlock` or the budget is spent.
    pub(crate) fn accept<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
        listener: ListenerId,
    ) {
        for _ in 0..self.config.accept_budget {
            match self.listeners.accept(listener) {
                Accepted::Stream(stream) => self.adopt(handler, stream, listener.0 as u32),
                Accepted::Nothing => return,
                // The client gave up before we got to it, or a signal: next.
                Accepted::Transient => {}
                Accepted::Failed(e) => {
                    self.accept_failed(listener, &e);
                    return;
                }
            }
        }
        // More may be queued, and no new edge will say so.
        self.stats.budget_exhausted += 1;
        if self.listeners.list(listener) {
            self.ready.push(token::listener_token(listener));
        }
    }

    /// Out of descriptors, or something unknown: retrying now would fail the
    /// same way at full CPU. Out of descriptors with
    /// [`EmfilePolicy::Shed`](crate::EmfilePolicy::Shed), the waiting
    /// connections are accepted with the spare descriptor and closed at
    /// once; otherwise (or with no spare) this listener pauses, and the
    /// others go on (they pause too if they fail the same way).
    pub(crate) fn accept_failed(&mut self, id: ListenerId, error: &io::Error) {
        let exhausted = limits::is_resource_exhaustion(error);
        if exhausted && self.config.emfile_policy == EmfilePolicy::Shed && self.shed(id) {
            return;
        }
        if exhausted {
            self.stats.accept_pauses += 1;
        } else {
            self.stats.accept_errors += 1;
        }
        let backoff = self.config.accept_backoff;
        let resume_at = deadline_after(Instant::now(), backoff);
        let Some(name) = self.listeners.pause(id, resume_at, &mut *self.backend) else {
            return;
        };
        self.limit_hit(
            Limit::AcceptBackoff,
            format_args!("accept on {name} failed: {error}; it pauses for {backoff:?}"),
        );
    }

    /// Sheds the connections waiting on `id` (up to the accept budget)
    /// with the spare descriptor: each is accepted and closed at once, so
    /// its client hears at once instead of waiting in a full backlog.
    /// `false` if there was no spare to do it with.
    fn shed(&mut self, id: ListenerId) -> bool {
        let budget = self.config.accept_budget;
        let listeners = &self.listeners;
        let mut shed = 0u64;
        let mut more_waiting = true;
        let spent = self.reserve.spend(|| {
            for _ in 0..budget {
                match listeners.accept(id) {
                    Accepted::Stream(stream) => {
                        drop(stream);
                        shed += 1;
                    }
                    Accepted::Transient => {}
                    Accepted::Nothing | Accepted::Failed(_) => {
                        more_waiting = false;
                        break;
                    }
                }
            }
        });
        if !spent {
            return false;
        }
        self.stats.accept_shed += shed;
        // The budget ran out with connections still waiting, and no new
        // edge will say so: come back next turn.
        if more_waiting && self.listeners.list(id) {
            self.ready.push(token::listener_token(id));
        }
        let name = self.listeners.name(id).to_owned();
        self.limit_hit(
            Limit::EmfileShed,
            format_args!("accept on {name}: {shed} waiting connections closed at once"),
        );
        // The spare could not be taken back: shed no more, pause instead.
        self.reserve.is_held()
    }

    /// Re-arms the listeners whose back-off has ended.
    pub(crate) fn resume_listeners(&mut self, now: Instant) {
        let retry_at = deadline_after(now, self.config.accept_backoff);
        let ready = &mut self.ready;
        // Connections may have queued meanwhile: try at once.
        self.listeners
            .resume_due(now, retry_at, &mut *self.backend, |token| ready.push(token));
    }

    /// Inserts an accepted connection: `inputs.append(conn)` and the greeting.
    /// `origin`: the listener's index, or `ADOPTED`.
    pub(crate) fn adopt<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
        stream: Stream,
        origin: u32,
    ) {
        if self.conns.open() >= self.max_connections.min(token::MAX_SLOTS) {
            self.reject(stream);
            return;
        }
        if self.config.nodelay && !self.listeners.gives_nodelay(origin) {
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
            let _ = stream.write_now(message);
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

    /// The system's "too many open files" (Winsock's on Windows).
    fn out_of_descriptors() -> io::Error {
        #[cfg(unix)]
        let code = libc::EMFILE;
        #[cfg(windows)]
        let code = windows_sys::Win32::Networking::WinSock::WSAEMFILE;
        io::Error::from_raw_os_error(code)
    }

    /// An accept error used to pause every listener; only the one that
    /// failed may pause.
    #[test]
    fn an_accept_error_pauses_only_the_listener_that_failed() {
        let mut core = core();
        let a = core.listen("127.0.0.1:0").unwrap();
        let b = core.listen("127.0.0.1:0").unwrap();
        assert_eq!(core.inputs(), 2);
        core.accept_failed(a, &out_of_descriptors());
        assert!(core.listeners.is_paused(a));
        assert!(!core.listeners.is_paused(b));
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
        core.accept_failed(a, &out_of_descriptors());
        assert!(core.listeners.resume_at().unwrap() > Instant::now());
    }

    #[test]
    #[cfg(unix)]
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
