//! A backend on `select(2)`: the call the seed's Python server makes, with
//! its limit. An `fd_set` is a bitmap of `FD_SETSIZE` (1,024) bits: a
//! descriptor at or above it cannot be put in one (in C, `FD_SET` would
//! write past the end of the set). Such a descriptor is refused when it is
//! added, and the connection it belongs to is dropped, counted and logged;
//! the others are served as before.

use std::fmt;
use std::io;
use std::os::unix::io::RawFd;
use std::time::{Duration, Instant};

use crate::Interest;

use super::registry::{Registry, Watched};
use super::{Backend, Readiness, Token};

/// [`Backend`] over `select(2)`: the sets are rebuilt from the interest
/// table on every call, as the seed rebuilds its `inputs` and `outputs`
/// lists, and the kernel scans every descriptor up to the highest one.
/// Level-triggered, like [`PollBackend`](super::PollBackend).
#[derive(Default)]
pub struct SelectBackend {
    registry: Registry<Entry>,
}

/// One watched descriptor and what it is watched for.
#[derive(Debug)]
struct Entry {
    fd: RawFd,
    interest: Interest,
}

impl Watched for Entry {
    fn fd(&self) -> RawFd {
        self.fd
    }
}

impl SelectBackend {
    /// An empty interest table.
    pub fn new() -> SelectBackend {
        SelectBackend::default()
    }
}

impl fmt::Debug for SelectBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectBackend")
            .field("descriptors", &self.registry.entries.len())
            .finish()
    }
}

/// The refusal of a descriptor that does not fit in an `fd_set`.
fn too_high(fd: RawFd) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "descriptor {fd} is at or above FD_SETSIZE ({}): select(2) cannot watch it",
            libc::FD_SETSIZE
        ),
    )
}

fn empty_set() -> libc::fd_set {
    // SAFETY: an fd_set is plain data; FD_ZERO initialises it.
    unsafe {
        let mut set = std::mem::zeroed::<libc::fd_set>();
        libc::FD_ZERO(&mut set);
        set
    }
}

impl Backend for SelectBackend {
    fn name(&self) -> &'static str {
        "select"
    }

    fn add(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        if fd < 0 || fd as usize >= libc::FD_SETSIZE {
            return Err(too_high(fd));
        }
        self.registry.add(token, Entry { fd, interest })
    }

    fn modify(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        let (entry, registered) = self.registry.get_mut(fd)?;
        entry.interest = interest;
        *registered = token;
        Ok(())
    }

    fn delete(&mut self, fd: RawFd) -> io::Result<()> {
        self.registry.remove(fd)
    }

    fn poll(&mut self, events: &mut Vec<Readiness>, timeout: Option<Duration>) -> io::Result<()> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut remaining = timeout;
        let (readable, writable) = loop {
            // Rebuilt every call: select overwrites the sets it is given.
            let (mut readable, mut writable) = (empty_set(), empty_set());
            let mut highest = -1;
            for &Entry { fd, interest } in &self.registry.entries {
                // SAFETY: every fd in the table is below FD_SETSIZE (add).
                unsafe {
                    if interest.is_readable() {
                        libc::FD_SET(fd, &mut readable);
                    }
                    if interest.is_writable() {
                        libc::FD_SET(fd, &mut writable);
                    }
                }
                highest = highest.max(fd);
            }
            let mut wait = remaining.map(|t| libc::timeval {
                tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_usec: t.subsec_micros() as libc::suseconds_t,
            });
            let wait_ptr = wait
                .as_mut()
                .map_or(std::ptr::null_mut(), |w| w as *mut libc::timeval);
            // SAFETY: the sets and the timeval live across the call; nfds
            // bounds what the kernel reads of the sets.
            let ready = unsafe {
                libc::select(
                    highest + 1,
                    &mut readable,
                    &mut writable,
                    std::ptr::null_mut(),
                    wait_ptr,
                )
            };
            if ready >= 0 {
                break (readable, writable);
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
            remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        };
        events.clear();
        let registry = &self.registry;
        for (&Entry { fd, .. }, &token) in registry.entries.iter().zip(&registry.tokens) {
            // SAFETY: fd is below FD_SETSIZE; the sets were filled by select.
            let (r, w) = unsafe { (libc::FD_ISSET(fd, &readable), libc::FD_ISSET(fd, &writable)) };
            if r || w {
                events.push(Readiness {
                    readable: r,
                    writable: w,
                    ..Readiness::none(token)
                });
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
    fn a_descriptor_past_fd_setsize_is_refused_and_the_others_work() {
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut backend = SelectBackend::new();
        let refused = backend
            .add(libc::FD_SETSIZE as RawFd, Token(9), Interest::READABLE)
            .unwrap_err();
        assert!(refused.to_string().contains("FD_SETSIZE"), "{refused}");
        backend
            .add(a.as_raw_fd(), Token(1), Interest::READABLE)
            .unwrap();
        b.write_all(b"x").unwrap();
        let mut events = Vec::new();
        backend
            .poll(&mut events, Some(Duration::from_secs(1)))
            .unwrap();
        assert_eq!(events, [Readiness::readable(Token(1))]);
        backend.delete(a.as_raw_fd()).unwrap();
        backend.poll(&mut events, Some(Duration::ZERO)).unwrap();
        assert!(events.is_empty());
    }
}
