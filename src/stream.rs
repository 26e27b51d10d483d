//! The sockets a connection or listener may be: TCP or Unix domain. One enum
//! each, so that everything above handles both alike.

use crate::sys::RawSource;
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
#[cfg(unix)]
use std::path::PathBuf;

use mio::net::{TcpListener, TcpStream};
#[cfg(unix)]
use mio::net::{UnixListener, UnixStream};

#[cfg(target_os = "linux")]
use crate::backend::RingStream;
use crate::backend::Streams;

/// A connected (or connecting) stream socket.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
    /// A TCP or Unix socket whose bytes an io_uring moves (a completion
    /// driver's): read and written as the others.
    #[cfg(target_os = "linux")]
    Ring(RingStream),
}

impl Stream {
    /// The same socket with its bytes moved by `streams`' ring (an open
    /// connection on io_uring's completion driver).
    ///
    /// # Errors
    ///
    /// The ring could not take it; the socket is dropped.
    #[cfg(target_os = "linux")]
    pub(crate) fn served_by(self, streams: &Streams) -> io::Result<Stream> {
        use std::os::fd::OwnedFd;
        let ring = match self {
            Stream::Tcp(s) => streams.adopt(OwnedFd::from(s), false)?,
            #[cfg(unix)]
            Stream::Unix(s) => streams.adopt(OwnedFd::from(s), true)?,
            ring @ Stream::Ring(_) => return Ok(ring),
        };
        Ok(Stream::Ring(ring))
    }

    #[cfg(not(target_os = "linux"))]
    pub(crate) fn served_by(self, streams: &Streams) -> io::Result<Stream> {
        match *streams {}
    }

    /// As [`served_by`](Stream::served_by), in place: for a socket the
    /// loop keeps in a connection (an outbound one, once connected).
    ///
    /// # Errors
    ///
    /// The ring could not take it; the socket stays as it was.
    #[cfg(target_os = "linux")]
    pub(crate) fn serve_in_place(&mut self, streams: &Streams) -> io::Result<()> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let (fd, unix) = match self {
            Stream::Tcp(s) => (s.as_raw_fd(), false),
            #[cfg(unix)]
            Stream::Unix(s) => (s.as_raw_fd(), true),
            Stream::Ring(_) => return Ok(()),
        };
        Streams::prepare(fd)?;
        // SAFETY: the descriptor's ownership moves from the socket it is
        // in, which is forgotten below without closing it (a mio socket
        // holds nothing else to free), to the ring's stream; nothing
        // between can fail and leave both owning it.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        let ring = Stream::Ring(streams.adopt_blocking(socket, unix));
        std::mem::forget(std::mem::replace(self, ring));
        Ok(())
    }

    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Stream::Tcp(s) => s.take_error(),
            #[cfg(unix)]
            Stream::Unix(s) => s.take_error(),
            #[cfg(target_os = "linux")]
            Stream::Ring(s) => s.take_error(),
        }
    }

    /// The peer's address; `None` for Unix sockets (their peers have paths,
    /// usually empty ones) and for sockets no longer connected.
    pub(crate) fn peer_addr(&self) -> Option<SocketAddr> {
        match self {
            Stream::Tcp(s) => s.peer_addr().ok(),
            #[cfg(unix)]
            Stream::Unix(_) => None,
            #[cfg(target_os = "linux")]
            Stream::Ring(s) if s.is_unix() => None,
            #[cfg(target_os = "linux")]
            Stream::Ring(s) => s.socket(|socket| socket.peer_addr().ok()?.as_socket()),
        }
    }

    /// Whether a non-blocking connect has completed.
    pub(crate) fn is_connected(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.peer_addr().is_ok(),
            #[cfg(unix)]
            Stream::Unix(s) => s.peer_addr().is_ok(),
            #[cfg(target_os = "linux")]
            Stream::Ring(s) => s.socket(|socket| socket.peer_addr().is_ok()),
        }
    }

    #[cfg(target_os = "linux")]
    fn is_unix(&self) -> bool {
        match self {
            Stream::Tcp(_) => false,
            #[cfg(unix)]
            Stream::Unix(_) => true,
            #[cfg(target_os = "linux")]
            Stream::Ring(s) => s.is_unix(),
        }
    }

    /// Whether bytes written to it are not yet sent by the ring that
    /// took them (never, for a socket the loop writes itself).
    pub(crate) fn sending(&self) -> bool {
        match self {
            #[cfg(target_os = "linux")]
            Stream::Ring(s) => s.sending(),
            _ => false,
        }
    }

    /// Takes the whole of `bytes` to send, leaving an emptied buffer in
    /// their place, where the socket sends from buffers it owns (a ring's
    /// connection): then a reply is not copied on its way out. False, and
    /// `bytes` untouched, where the socket takes copies (`write`).
    pub(crate) fn write_whole(&mut self, bytes: &mut VecDeque<u8>) -> bool {
        match self {
            #[cfg(target_os = "linux")]
            Stream::Ring(s) => s.write_whole(bytes),
            _ => {
                let _ = bytes;
                false
            }
        }
    }

    /// Writes what the socket's buffer takes at once, straight to the
    /// socket: a farewell to a connection about to be dropped, which a
    /// ring's queue would drop with it.
    pub(crate) fn write_now(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            #[cfg(target_os = "linux")]
            Stream::Ring(s) => s.socket(|socket| {
                socket.send_with_flags(bytes, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
            }),
            _ => self.write(bytes),
        }
    }

    /// Shuts one or both directions (`shutdown(2)`).
    pub(crate) fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            #[cfg(unix)]
            Stream::Unix(s) => s.shutdown(how),
            #[cfg(target_os = "linux")]
            Stream::Ring(s) => s.shutdown(how),
        }
    }

    pub(crate) fn set_nodelay(&self) {
        match self {
            // Only latency is at stake: a failure is not worth dropping the client.
            Stream::Tcp(s) => drop(s.set_nodelay(true)),
            #[cfg(unix)]
            Stream::Unix(_) => {}
            #[cfg(target_os = "linux")]
            Stream::Ring(s) if !s.is_unix() => s.socket(|socket| drop(socket.set_nodelay(true))),
            #[cfg(target_os = "linux")]
            Stream::Ring(_) => {}
        }
    }

    /// The peer, described only when shown: a log line that is not
    /// written costs no `getpeername`.
    pub(crate) fn peer(&self) -> impl fmt::Display + '_ {
        struct Peer<'a>(&'a Stream);
        impl fmt::Display for Peer<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0.peer_name())
            }
        }
        Peer(self)
    }

    /// A short description of the peer for log lines.
    pub(crate) fn peer_name(&self) -> String {
        match self {
            Stream::Tcp(s) => match s.peer_addr() {
                Ok(addr) => addr.to_string(),
                Err(_) => String::from("peer unknown"),
            },
            #[cfg(unix)]
            Stream::Unix(_) => String::from("unix peer"),
            #[cfg(target_os = "linux")]
            Stream::Ring(_) => match self.peer_addr() {
                Some(addr) => addr.to_string(),
                None if self.is_unix() => String::from("unix peer"),
                None => String::from("peer unknown"),
            },
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.read(buf),
            #[cfg(target_os = "linux")]
            Stream::Ring(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.write(buf),
            #[cfg(target_os = "linux")]
            Stream::Ring(s) => s.write(&[IoSlice::new(buf)]),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            #[cfg(unix)]
            Stream::Unix(s) => s.write_vectored(bufs),
            #[cfg(target_os = "linux")]
            Stream::Ring(s) => s.write(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream {
    /// Its descriptor (Unix) or socket (Windows), as the backend knows it.
    pub(crate) fn raw_source(&self) -> RawSource {
        match self {
            Stream::Tcp(s) => crate::sys::raw_source(s),
            #[cfg(unix)]
            Stream::Unix(s) => crate::sys::raw_source(s),
            #[cfg(target_os = "linux")]
            Stream::Ring(s) => s.fd(),
        }
    }
}

/// A listening socket. A Unix one removes its socket file when dropped, so
/// a shutdown leaves no stale path behind.
pub(crate) enum ListenSocket {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(UnixListener, PathBuf),
}

impl ListenSocket {
    pub(crate) fn accept(&self) -> io::Result<Stream> {
        match self {
            ListenSocket::Tcp(l) => l.accept().map(|(s, _)| Stream::Tcp(s)),
            #[cfg(unix)]
            ListenSocket::Unix(l, _) => l.accept().map(|(s, _)| Stream::Unix(s)),
        }
    }

    pub(crate) fn path(&self) -> Option<&Path> {
        match self {
            ListenSocket::Tcp(_) => None,
            #[cfg(unix)]
            ListenSocket::Unix(_, path) => Some(path),
        }
    }
}

impl ListenSocket {
    /// Its descriptor (Unix) or socket (Windows), as the backend knows it.
    pub(crate) fn raw_source(&self) -> RawSource {
        match self {
            ListenSocket::Tcp(l) => crate::sys::raw_source(l),
            #[cfg(unix)]
            ListenSocket::Unix(l, _) => crate::sys::raw_source(l),
        }
    }
}

impl Drop for ListenSocket {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let ListenSocket::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl fmt::Debug for ListenSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenSocket::Tcp(l) => write!(f, "tcp {:?}", l.local_addr().ok()),
            #[cfg(unix)]
            ListenSocket::Unix(_, path) => write!(f, "unix {}", path.display()),
        }
    }
}
