//! A backend on `poll(2)` (`WSAPoll` on Windows): the seed's
//! `select.select` without its descriptor limit, and the plainest
//! level-triggered multiplexer.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use crate::sys::RawSource;
use crate::Interest;

use super::poll_bits::{self, Mask};
use super::registry::Registry;
use super::{readiness_from_poll, Backend, Readiness, Token};

/// One watched descriptor as the system's call takes it.
#[cfg(unix)]
type PollFd = libc::pollfd;
#[cfg(windows)]
type PollFd = windows_sys::Win32::Networking::WinSock::WSAPOLLFD;

/// [`Backend`] over `poll(2)`: an array of `pollfd`, handed whole to the
/// kernel on every call (so a call costs time in proportion to the number
/// of descriptors watched: the C10K problem in one line), kept with O(1)
/// add, change and removal.
///
/// Level-triggered: a descriptor is reported for as long as it is ready, not
/// once when it becomes ready. The loop removes the interest of a
/// connection it does not mean to read or write (paused, closing), so that
/// readiness it ignores on purpose cannot make it spin.
///
/// On Windows it is `WSAPoll`, Winsock's copy of `poll(2)`, with two flaws
/// of its own. Before Windows 10 2004 it did not report a connect that
/// failed (the connection's deadline closes it then). And it reports a
/// peer's end of input as `POLLHUP`, which no interest can mask: a
/// connection that still owes output to a peer that ended its input (and
/// does not read yet) would make every call return at once. Such a
/// hang-up is reported once; after it, while nothing else is ready, the
/// backend waits in steps of 10 ms rather than spin, so other
/// sockets' news may wait that long.
#[derive(Default)]
pub struct PollBackend {
    registry: Registry<PollFd>,
    /// Sockets whose hang-up was reported (Windows): reported again only
    /// with other news.
    #[cfg(windows)]
    hung_up: std::collections::HashSet<RawSource>,
}

/// How long a `WSAPoll` wait lasts at most while only known hang-ups are
/// ready (Windows).
#[cfg(windows)]
const HANG_UP_STEP: Duration = Duration::from_millis(10);

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
fn events_for(interest: Interest) -> Mask {
    let mut events = 0;
    if interest.is_readable() {
        events |= poll_bits::POLLIN;
        // WSAPoll refuses the whole call (WSAEINVAL) for a flag it does
        // not support, and POLLPRI is one.
        #[cfg(unix)]
        {
            events |= poll_bits::POLLPRI;
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            events |= libc::POLLRDHUP;
        }
    }
    if interest.is_writable() {
        events |= poll_bits::POLLOUT;
    }
    events
}

/// The entry for `fd`, waiting for `events`.
fn poll_fd(fd: RawSource, events: Mask) -> PollFd {
    PollFd {
        #[cfg(unix)]
        fd,
        #[cfg(windows)]
        fd: fd as windows_sys::Win32::Networking::WinSock::SOCKET,
        events,
        revents: 0,
    }
}

/// One `poll(2)` call: how many entries have news.
#[cfg(unix)]
fn poll_once(fds: &mut [PollFd], ms: i32) -> io::Result<usize> {
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs, which
    // poll only reads and writes within.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    usize::try_from(ready).map_err(|_| io::Error::last_os_error())
}

/// One `WSAPoll` call: how many entries have news.
#[cfg(windows)]
fn poll_once(fds: &mut [PollFd], ms: i32) -> io::Result<usize> {
    use windows_sys::Win32::Networking::WinSock::{WSAGetLastError, WSAPoll};
    if fds.is_empty() {
        // WSAPoll refuses an empty set (WSAEINVAL), where poll(2) sleeps.
        let wait = u64::try_from(ms).map_or(Duration::from_secs(1), Duration::from_millis);
        std::thread::sleep(wait);
        return Ok(0);
    }
    // SAFETY: `fds` is a valid array of `fds.len()` WSAPOLLFD structs,
    // which WSAPoll only reads and writes within.
    let ready = unsafe { WSAPoll(fds.as_mut_ptr(), fds.len() as u32, ms) };
    // SAFETY: no arguments; reads the calling thread's last Winsock error.
    usize::try_from(ready).map_err(|_| io::Error::from_raw_os_error(unsafe { WSAGetLastError() }))
}

impl Backend for PollBackend {
    fn name(&self) -> &'static str {
        "poll"
    }

    fn add(&mut self, fd: RawSource, token: Token, interest: Interest) -> io::Result<()> {
        self.registry.add(token, poll_fd(fd, events_for(interest)))
    }

    fn modify(&mut self, fd: RawSource, token: Token, interest: Interest) -> io::Result<()> {
        let (entry, registered) = self.registry.get_mut(fd)?;
        entry.events = events_for(interest);
        *registered = token;
        Ok(())
    }

    fn delete(&mut self, fd: RawSource) -> io::Result<()> {
        #[cfg(windows)]
        self.hung_up.remove(&fd);
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
                i32::try_from(ms).unwrap_or(i32::MAX)
            });
            match poll_once(&mut self.registry.entries, ms) {
                Ok(_) => {
                    let quiet = self.collect(events);
                    if !quiet {
                        return Ok(());
                    }
                    // Only hang-ups reported before: wait a step, then look
                    // again (see the type's documentation).
                    #[cfg(windows)]
                    std::thread::sleep(remaining.map_or(HANG_UP_STEP, |t| t.min(HANG_UP_STEP)));
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
            // A signal cut the wait short, or only old news came: wait
            // again for what is left.
            remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if remaining == Some(Duration::ZERO) {
                events.clear();
                return Ok(());
            }
        }
    }
}

impl PollBackend {
    /// Fills `events` from the last call's results. True when the call
    /// found only hang-ups reported before (Windows; never elsewhere).
    fn collect(&mut self, events: &mut Vec<Readiness>) -> bool {
        events.clear();
        #[cfg_attr(unix, allow(unused_mut))]
        let mut old_news = false;
        let registry = &self.registry;
        for (fd, &token) in registry.entries.iter().zip(&registry.tokens) {
            if fd.revents == 0 {
                continue;
            }
            #[cfg(windows)]
            if hang_up_told_before(&mut self.hung_up, fd) {
                old_news = true;
                continue;
            }
            events.push(readiness_from_poll(token, fd.revents));
        }
        old_news && events.is_empty()
    }
}

/// Whether `fd`'s only news is a hang-up `hung_up` holds already (else a
/// new one is noted there). A socket watched for reading reads its end of
/// input and stops being watched for it; one watched for writing is told
/// when it can write.
#[cfg(windows)]
fn hang_up_told_before(hung_up: &mut std::collections::HashSet<RawSource>, fd: &PollFd) -> bool {
    use poll_bits::{POLLERR, POLLHUP};
    let only_hang_up = fd.revents & POLLHUP != 0 && fd.revents & (fd.events | POLLERR) == 0;
    only_hang_up && !hung_up.insert(fd.fd as RawSource)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::tests::tcp_pair;
    use crate::sys::raw_source;
    use std::io::Write;

    #[test]
    fn removal_swaps_the_last_descriptor_into_the_hole() {
        let pairs: Vec<_> = (0..3).map(|_| tcp_pair()).collect();
        let mut backend = PollBackend::new();
        for (i, (a, _)) in pairs.iter().enumerate() {
            backend
                .add(raw_source(a), Token(i), Interest::READABLE)
                .unwrap();
        }
        backend.delete(raw_source(&pairs[0].0)).unwrap();
        assert!(backend.delete(raw_source(&pairs[0].0)).is_err());
        (&pairs[2].1).write_all(b"x").unwrap();
        let mut events = Vec::new();
        backend
            .poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].token, Token(2), "the moved entry kept its token");
        assert!(events[0].readable);
        // Level-triggered: reported again while the byte is unread.
        backend.poll(&mut events, Some(Duration::ZERO)).unwrap();
        assert_eq!(events.len(), 1);
        // Without READABLE interest it is not.
        backend
            .modify(raw_source(&pairs[2].0), Token(2), Interest::WRITABLE)
            .unwrap();
        backend.poll(&mut events, Some(Duration::ZERO)).unwrap();
        assert!(events.iter().all(|e| !e.readable));
    }

    /// A socket that owes output to a peer that ended its input (and reads
    /// nothing): waiting to write must wait, not spin. Winsock's POLLHUP
    /// says the end of input on every call, whatever was asked; it is
    /// told once.
    #[test]
    fn waiting_to_write_to_a_peer_that_ended_its_input_waits() {
        let (ours, peer) = tcp_pair();
        ours.set_nonblocking(true).unwrap();
        let chunk = [0u8; 64 * 1024];
        while (&ours).write(&chunk).is_ok() {}
        peer.shutdown(std::net::Shutdown::Write).unwrap();
        let mut backend = PollBackend::new();
        backend
            .add(raw_source(&ours), Token(1), Interest::WRITABLE)
            .unwrap();
        let mut events = Vec::new();
        // The end of input, told at most once (on Windows).
        backend
            .poll(&mut events, Some(Duration::from_millis(200)))
            .unwrap();
        assert!(events.iter().all(|e| !e.writable), "{events:?}");
        for _ in 0..3 {
            let started = Instant::now();
            backend
                .poll(&mut events, Some(Duration::from_millis(100)))
                .unwrap();
            assert_eq!(events, [], "nothing new to tell");
            let waited = started.elapsed();
            assert!(
                waited >= Duration::from_millis(90),
                "returned after {waited:?}"
            );
        }
        drop(peer);
    }
}
