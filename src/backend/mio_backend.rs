//! The default backend: `mio::Poll` (epoll, kqueue, and IOCP with AFD
//! polls on Windows).

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Poll};

use crate::sys::RawSource;

use crate::Interest;

use super::{Backend, Readiness, Token};

/// [`Backend`] over `mio::Poll`: epoll on Linux, kqueue on macOS and the
/// BSDs, IOCP on Windows.
///
/// mio registers edge-triggered: a socket is reported when it *becomes* ready,
/// so the loop reads and writes until `WouldBlock` (or a short read, which on
/// these kernels means the buffer was emptied and the next arrival will be
/// reported again).
///
/// On Windows mio registers objects, not sockets, and keeps a socket's
/// polls armed only through the object that reads it: it re-arms one when
/// a read or write *through that object* says `WouldBlock`. The loop's
/// sockets are registered here by their raw sockets, so this backend
/// registers a stand-in for each (a mio socket made from the raw one,
/// which never reads, writes or closes it), and re-arms every socket it
/// reports after reporting it: readiness there is level-triggered, as with
/// `poll` (a ready socket is reported again on the next poll until the
/// loop has drained it), which the loop serves alike.
pub struct MioBackend {
    poll: Poll,
    events: Events,
    /// The stand-ins, by socket.
    #[cfg(windows)]
    registered: std::collections::HashMap<RawSource, Registered>,
    /// The socket registered under each token.
    #[cfg(windows)]
    by_token: std::collections::HashMap<mio::Token, RawSource>,
}

impl MioBackend {
    /// A new poller that takes up to `capacity` events per poll.
    ///
    /// # Errors
    ///
    /// The system refused to create the poller (`epoll_create1`, `kqueue`),
    /// typically for lack of file descriptors.
    pub fn new(capacity: usize) -> io::Result<MioBackend> {
        Ok(MioBackend {
            poll: Poll::new()?,
            events: Events::with_capacity(capacity.max(1)),
            #[cfg(windows)]
            registered: std::collections::HashMap::new(),
            #[cfg(windows)]
            by_token: std::collections::HashMap::new(),
        })
    }
}

impl fmt::Debug for MioBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MioBackend")
            .field("name", &self.name())
            .finish()
    }
}

impl Backend for MioBackend {
    fn name(&self) -> &'static str {
        if cfg!(any(target_os = "linux", target_os = "android")) {
            "epoll"
        } else if cfg!(windows) {
            "iocp"
        } else {
            "kqueue"
        }
    }

    #[cfg(unix)]
    fn add(&mut self, fd: RawSource, token: Token, interest: Interest) -> io::Result<()> {
        self.poll.registry().register(
            &mut mio::unix::SourceFd(&fd),
            mio::Token(token.0),
            to_mio(interest),
        )
    }

    #[cfg(unix)]
    fn modify(&mut self, fd: RawSource, token: Token, interest: Interest) -> io::Result<()> {
        self.poll.registry().reregister(
            &mut mio::unix::SourceFd(&fd),
            mio::Token(token.0),
            to_mio(interest),
        )
    }

    #[cfg(unix)]
    fn delete(&mut self, fd: RawSource) -> io::Result<()> {
        self.poll
            .registry()
            .deregister(&mut mio::unix::SourceFd(&fd))
    }

    #[cfg(unix)]
    fn raw_fd(&self) -> Option<RawSource> {
        Some(std::os::unix::io::AsRawFd::as_raw_fd(&self.poll))
    }

    #[cfg(windows)]
    fn add(&mut self, socket: RawSource, token: Token, interest: Interest) -> io::Result<()> {
        use std::collections::hash_map::Entry;
        let Entry::Vacant(vacant) = self.registered.entry(socket) else {
            return Err(io::ErrorKind::AlreadyExists.into());
        };
        let mut stand_in = Registered::new(socket, mio::Token(token.0), to_mio(interest));
        let (source, token, interest) = stand_in.parts();
        self.poll.registry().register(source, token, interest)?;
        vacant.insert(stand_in);
        self.by_token.insert(token, socket);
        Ok(())
    }

    #[cfg(windows)]
    fn modify(&mut self, socket: RawSource, token: Token, interest: Interest) -> io::Result<()> {
        let stand_in = self
            .registered
            .get_mut(&socket)
            .ok_or(io::ErrorKind::NotFound)?;
        if self.by_token.get(&stand_in.token) == Some(&socket) {
            self.by_token.remove(&stand_in.token);
        }
        stand_in.token = mio::Token(token.0);
        stand_in.interest = to_mio(interest);
        self.by_token.insert(stand_in.token, socket);
        let (source, token, interest) = stand_in.parts();
        self.poll.registry().reregister(source, token, interest)
    }

    #[cfg(windows)]
    fn delete(&mut self, socket: RawSource) -> io::Result<()> {
        let mut stand_in = self
            .registered
            .remove(&socket)
            .ok_or(io::ErrorKind::NotFound)?;
        if self.by_token.get(&stand_in.token) == Some(&socket) {
            self.by_token.remove(&stand_in.token);
        }
        let (source, _, _) = stand_in.parts();
        self.poll.registry().deregister(source)
    }

    fn poll(&mut self, events: &mut Vec<Readiness>, timeout: Option<Duration>) -> io::Result<()> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut remaining = timeout;
        loop {
            match self.poll.poll(&mut self.events, remaining) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    // A signal cut the wait short: wait again, but only for
                    // what is left of the caller's timeout.
                    remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                }
                Err(e) => return Err(e),
            }
        }
        events.clear();
        events.extend(self.events.iter().map(|event| Readiness {
            token: Token(event.token().0),
            readable: event.is_readable(),
            writable: event.is_writable(),
            read_closed: event.is_read_closed(),
            write_closed: event.is_write_closed(),
            error: event.is_error(),
        }));
        #[cfg(windows)]
        self.rearm_reported();
        Ok(())
    }
}

#[cfg(windows)]
impl MioBackend {
    /// Arms again the polls of the sockets just reported (mio disarmed
    /// what it reported, waiting for a `WouldBlock` through the stand-in,
    /// which never reads). A socket still ready is reported by the next
    /// poll.
    fn rearm_reported(&mut self) {
        let registry = self.poll.registry();
        for event in self.events.iter() {
            let socket = self.by_token.get(&event.token());
            let Some(stand_in) = socket.and_then(|s| self.registered.get_mut(s)) else {
                continue;
            };
            let (source, token, interest) = stand_in.parts();
            if let Err(e) = registry.reregister(source, token, interest) {
                warn!("re-arming a socket's poll failed: {e}");
            }
        }
    }
}

/// What mio registers for one of the loop's sockets on Windows: a mio
/// socket made from the raw socket, which never reads, writes or closes
/// it (the loop's own object does all three).
#[cfg(windows)]
struct Registered {
    /// `Some` until dropped; its socket is given back, never closed.
    stand_in: Option<mio::net::TcpStream>,
    token: mio::Token,
    interest: mio::Interest,
}

#[cfg(windows)]
impl Registered {
    fn new(socket: RawSource, token: mio::Token, interest: mio::Interest) -> Registered {
        use std::os::windows::io::FromRawSocket;
        // SAFETY: `socket` is open (the loop registers only sockets it
        // holds, and deletes them before closing them), and this object
        // never closes it: `drop` takes the socket back out of it. mio's
        // registration treats every socket alike, whatever its type.
        let stand_in = unsafe { mio::net::TcpStream::from_raw_socket(socket) };
        Registered {
            stand_in: Some(stand_in),
            token,
            interest,
        }
    }

    fn parts(&mut self) -> (&mut mio::net::TcpStream, mio::Token, mio::Interest) {
        let stand_in = self.stand_in.as_mut().expect("a stand-in until dropped");
        (stand_in, self.token, self.interest)
    }
}

#[cfg(windows)]
impl Drop for Registered {
    fn drop(&mut self) {
        use std::os::windows::io::IntoRawSocket;
        // The socket is the loop's: only mio's own state is freed here.
        if let Some(stand_in) = self.stand_in.take() {
            let _ = stand_in.into_raw_socket();
        }
    }
}

/// The crate's interest in mio's terms: the one place the two meet.
fn to_mio(interest: Interest) -> mio::Interest {
    match (interest.is_readable(), interest.is_writable()) {
        (true, true) => mio::Interest::READABLE | mio::Interest::WRITABLE,
        (false, true) => mio::Interest::WRITABLE,
        _ => mio::Interest::READABLE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::tests::tcp_pair;
    use crate::sys::raw_source;
    use std::io::{Read, Write};

    /// A socket the loop has not drained: epoll and kqueue report it once
    /// (edge-triggered); on Windows, where the backend re-arms what it
    /// reported, again on the next poll, until it is drained.
    #[test]
    fn an_undrained_socket_is_reported_once_on_unix_and_until_drained_on_windows() {
        let (ours, mut peer) = tcp_pair();
        ours.set_nonblocking(true).unwrap();
        let mut backend = MioBackend::new(16).unwrap();
        backend
            .add(raw_source(&ours), Token(7), Interest::READABLE)
            .unwrap();
        peer.write_all(b"undrained").unwrap();
        let mut events = Vec::new();
        backend
            .poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(events.len(), 1);
        assert!(events[0].readable && events[0].token == Token(7));
        backend
            .poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        assert_eq!(events.len(), usize::from(cfg!(windows)), "{events:?}");
        let mut buf = [0u8; 64];
        assert_eq!((&ours).read(&mut buf).unwrap(), 9);
        assert!((&ours).read(&mut buf).is_err(), "drained: WouldBlock");
        backend
            .poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        assert_eq!(events, [], "drained: not reported");
        // New bytes are news everywhere.
        peer.write_all(b"more").unwrap();
        backend
            .poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(events.len(), 1);
        backend.delete(raw_source(&ours)).unwrap();
        assert!(backend.delete(raw_source(&ours)).is_err());
        // The socket stays the caller's: deleting closed nothing.
        assert_eq!((&ours).read(&mut buf).unwrap(), 4);
    }
}
