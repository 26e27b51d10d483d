//! A backend on `poll(2)`: the seed's `select.select` without its
//! 1,024-descriptor limit, and the plainest level-triggered multiplexer.

use std::fmt;
use std::io;
use std::os::unix::io::RawFd;
use std::time::{Duration, Instant};

use crate::Interest;

use super::registry::Registry;
use super::{readiness_from_poll, Backend, Readiness, Token};

/// [`Backend`] over `poll(2)`: an array of `pollfd`, handed whole to the
/// kernel on every call (so a call costs time in proportion to the number
/// of descriptors watched: the C10K problem in one line), kept with O(1)
/// add, change and removal.
///
/// Level-triggered: a descriptor is reported for as long as it is ready, not
/// once when it becomes ready. The loop removes the interest of a
/// connection it does not mean to read or write (paused, closing), so that
/// readiness it ignores on purpose cannot make it spin.
#[derive(Default)]
pub struct PollBackend {
    registry: Registry<libc::pollfd>,
}

impl PollBackend {
    /// An empty set of descriptors.
    pub fn new() -> PollBackend {
        PollBackend::default()
    }
}

impl fmt::Debug for PollBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollBackend")
            .field("descriptors", &self.registry.entries.len())
            .finish()
    }
}

/// The `poll` events that stand for `interest`.
fn events_for(interest: Interest) -> libc::c_short {
    let mut events = 0;
    if interest.is_readable() {
        events |= libc::POLLIN | libc::POLLPRI;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            events |= libc::POLLRDHUP;
        }
    }
    if interest.is_writable() {
        events |= libc::POLLOUT;
    }
    events
}

impl Backend for PollBackend {
    fn name(&self) -> &'static str {
        "poll"
    }

    fn add(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        let events = events_for(interest);
        self.registry.add(
            token,
            libc::pollfd {
                fd,
                events,
                revents: 0,
            },
        )
    }

    fn modify(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        let (entry, registered) = self.registry.get_mut(fd)?;
        entry.events = events_for(interest);
        *registered = token;
        Ok(())
    }

    fn delete(&mut self, fd: RawFd) -> io::Result<()> {
        self.registry.remove(fd)
    }

    fn poll(&mut self, events: &mut Vec<Readiness>, timeout: Option<Duration>) -> io::Result<()> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut remaining = timeout;
        loop {
            // Rounded up: a timer due in 0.4 ms must not be polled for 0 ms
            // (a spin) nor waited past.
            let ms = remaining.map_or(-1, |t| {
                let ms = t.as_micros().div_ceil(1000);
                libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
            });
            // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs,
            // which poll only reads and writes within.
            let fds = &mut self.registry.entries;
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
            if ready >= 0 {
                break;
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
            // A signal cut the wait short: wait again for what is left.
            remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        }
        events.clear();
        let registry = &self.registry;
        for (fd, &token) in registry.entries.iter().zip(&registry.tokens) {
            if fd.revents != 0 {
                events.push(readiness_from_poll(token, fd.revents));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::io::AsRawFd;

    #[test]
    fn removal_swaps_the_last_descriptor_into_the_hole() {
        let pairs: Vec<_> = (0..3)
            .map(|_| std::os::unix::net::UnixStream::pair().unwrap())
            .collect();
        let mut backend = PollBackend::new();
        for (i, (a, _)) in pairs.iter().enumerate() {
            backend
                .add(a.as_raw_fd(), Token(i), Interest::READABLE)
                .unwrap();
        }
        backend.delete(pairs[0].0.as_raw_fd()).unwrap();
        assert!(backend.delete(pairs[0].0.as_raw_fd()).is_err());
        (&pairs[2].1).write_all(b"x").unwrap();
        let mut events = Vec::new();
        backend.poll(&mut events, Some(Duration::ZERO)).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].token, Token(2), "the moved entry kept its token");
        assert!(events[0].readable);
        // Level-triggered: reported again while the byte is unread.
        backend.poll(&mut events, Some(Duration::ZERO)).unwrap();
        assert_eq!(events.len(), 1);
        // Without READABLE interest it is not.
        backend
            .modify(pairs[2].0.as_raw_fd(), Token(2), Interest::WRITABLE)
            .unwrap();
        backend.poll(&mut events, Some(Duration::ZERO)).unwrap();
        assert!(events.iter().all(|e| !e.readable));
    }
}
