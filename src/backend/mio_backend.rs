//! The default backend: `mio::Poll` (epoll, kqueue).

use std::fmt;
use std::io;
use std::os::unix::io::RawFd;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Poll};

use crate::Interest;

use super::{Backend, Readiness, Token};

/// [`Backend`] over `mio::Poll`: epoll on Linux, kqueue on macOS and the BSDs.
///
/// mio registers edge-triggered: a socket is reported when it *becomes* ready,
/// so the loop reads and writes until `WouldBlock` (or a short read, which on
/// these kernels means the buffer was emptied and the next arrival will be
/// reported again).
pub struct MioBackend {
    poll: Poll,
    events: Events,
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
        } else {
            "kqueue"
        }
    }

    fn add(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        self.poll
            .registry()
            .register(&mut SourceFd(&fd), mio::Token(token.0), to_mio(interest))
    }

    fn modify(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        self.poll
            .registry()
            .reregister(&mut SourceFd(&fd), mio::Token(token.0), to_mio(interest))
    }

    fn delete(&mut self, fd: RawFd) -> io::Result<()> {
        self.poll.registry().deregister(&mut SourceFd(&fd))
    }

    fn raw_fd(&self) -> Option<RawFd> {
        Some(std::os::unix::io::AsRawFd::as_raw_fd(&self.poll))
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
        Ok(())
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
