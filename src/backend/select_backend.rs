//! A backend on `select(2)`: the call the seed's Python server makes, with
//! its limit. On Unix an `fd_set` is a bitmap of `FD_SETSIZE` (1,024)
//! bits: a descriptor at or above it cannot be put in one (in C, `FD_SET`
//! would write past the end of the set). On Windows an `fd_set` is an
//! array of 64 sockets, whatever their numbers: the 65th socket does not
//! fit. Such a descriptor is refused when it is added, and the connection
//! it belongs to is dropped, counted and logged; the others are served as
//! before.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use crate::sys::RawSource;
use crate::Interest;

use super::registry::{Registry, Watched};
use super::{Backend, Readiness, Token};

/// [`Backend`] over `select(2)` (Winsock's `select` on Windows): the sets
/// are rebuilt from the interest table on every call, as the seed rebuilds
/// its `inputs` and `outputs` lists, and the kernel scans every descriptor
/// up to the highest one. Level-triggered, like
/// [`PollBackend`](super::PollBackend).
#[derive(Default)]
pub struct SelectBackend {
    registry: Registry<Entry>,
}

/// One watched descriptor and what it is watched for.
#[derive(Debug)]
struct Entry {
    fd: RawSource,
    interest: Interest,
}

impl Watched for Entry {
    fn fd(&self) -> RawSource {
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

/// `FD_SETSIZE` on this system: the highest descriptor plus one (Unix), or
/// the most sockets (Windows), an `fd_set` holds.
#[cfg(unix)]
const FD_SETSIZE: usize = libc::FD_SETSIZE;
#[cfg(windows)]
const FD_SETSIZE: usize = windows_sys::Win32::Networking::WinSock::FD_SETSIZE as usize;

/// The refusal of a descriptor that does not fit in an `fd_set`.
fn too_high(fd: RawSource) -> io::Error {
    let why = if cfg!(windows) {
        "64 sockets are watched already"
    } else {
        "it is at or above it"
    };
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("descriptor {fd} does not fit in an fd_set (FD_SETSIZE {FD_SETSIZE}: {why}): select cannot watch it"),
    )
}

/// Whether `fd` fits in the sets beside the `watched` descriptors.
fn fits(fd: RawSource, watched: usize) -> bool {
    #[cfg(unix)]
    {
        let _ = watched;
        usize::try_from(fd).is_ok_and(|fd| fd < FD_SETSIZE)
    }
    #[cfg(windows)]
    {
        let _ = fd;
        watched < FD_SETSIZE
    }
}

#[cfg(unix)]
fn empty_set() -> libc::fd_set {
    // SAFETY: an fd_set is plain data; FD_ZERO initialises it.
    unsafe {
        let mut set = std::mem::zeroed::<libc::fd_set>();
        libc::FD_ZERO(&mut set);
        set
    }
}

/// One `select(2)` call over `entries`; what is ready goes to `events`
/// under `tokens`.
#[cfg(unix)]
fn select_once(
    entries: &[Entry],
    tokens: &[Token],
    timeout: Option<Duration>,
    events: &mut Vec<Readiness>,
) -> io::Result<()> {
    // Rebuilt every call: select overwrites the sets it is given.
    let (mut readable, mut writable) = (empty_set(), empty_set());
    let mut highest = -1;
    for &Entry { fd, interest } in entries {
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
    let mut wait = timeout.map(|t| libc::timeval {
        tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_usec: t.subsec_micros() as libc::suseconds_t,
    });
    let wait_ptr = wait
        .as_mut()
        .map_or(std::ptr::null_mut(), |w| w as *mut libc::timeval);
    // SAFETY: the sets and the timeval live across the call; nfds bounds
    // what the kernel reads of the sets.
    let ready = unsafe {
        libc::select(
            highest + 1,
            &mut readable,
            &mut writable,
            std::ptr::null_mut(),
            wait_ptr,
        )
    };
    if ready < 0 {
        return Err(io::Error::last_os_error());
    }
    events.clear();
    for (&Entry { fd, .. }, &token) in entries.iter().zip(tokens) {
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

/// One Winsock `select` call over `entries`; what is ready goes to
/// `events` under `tokens`. A socket watched for writing is watched for
/// exceptions too: Winsock reports a failed connect there, not as
/// writable.
#[cfg(windows)]
fn select_once(
    entries: &[Entry],
    tokens: &[Token],
    timeout: Option<Duration>,
    events: &mut Vec<Readiness>,
) -> io::Result<()> {
    use windows_sys::Win32::Networking::WinSock::{
        __WSAFDIsSet, select, WSAGetLastError, FD_SET, SOCKET, TIMEVAL,
    };
    let empty = || FD_SET {
        fd_count: 0,
        fd_array: [0; FD_SETSIZE],
    };
    let put = |set: &mut FD_SET, fd: RawSource| {
        // Below FD_SETSIZE: `add` refuses the 65th socket.
        set.fd_array[set.fd_count as usize] = fd as SOCKET;
        set.fd_count += 1;
    };
    let (mut readable, mut writable, mut failed) = (empty(), empty(), empty());
    for &Entry { fd, interest } in entries {
        if interest.is_readable() {
            put(&mut readable, fd);
        }
        if interest.is_writable() {
            put(&mut writable, fd);
            put(&mut failed, fd);
        }
    }
    if readable.fd_count + writable.fd_count == 0 {
        // Winsock refuses three empty sets (WSAEINVAL), where select(2)
        // sleeps.
        std::thread::sleep(timeout.unwrap_or(Duration::from_secs(1)));
        events.clear();
        return Ok(());
    }
    let wait = timeout.map(|t| TIMEVAL {
        tv_sec: i32::try_from(t.as_secs()).unwrap_or(i32::MAX),
        tv_usec: t.subsec_micros() as i32,
    });
    let wait_ptr = wait
        .as_ref()
        .map_or(std::ptr::null(), |w| w as *const TIMEVAL);
    // SAFETY: the sets and the TIMEVAL live across the call; Winsock
    // ignores nfds and reads each set's own count.
    let ready = unsafe { select(0, &mut readable, &mut writable, &mut failed, wait_ptr) };
    if ready < 0 {
        // SAFETY: no arguments; the calling thread's last Winsock error.
        return Err(io::Error::from_raw_os_error(unsafe { WSAGetLastError() }));
    }
    events.clear();
    for (&Entry { fd, .. }, &token) in entries.iter().zip(tokens) {
        // SAFETY: each set was filled by select and lives across the calls.
        let (r, w, e) = unsafe {
            (
                __WSAFDIsSet(fd as SOCKET, &mut readable) != 0,
                __WSAFDIsSet(fd as SOCKET, &mut writable) != 0,
                __WSAFDIsSet(fd as SOCKET, &mut failed) != 0,
            )
        };
        if r || w || e {
            events.push(Readiness {
                readable: r,
                writable: w || e,
                error: e,
                ..Readiness::none(token)
            });
        }
    }
    Ok(())
}

impl Backend for SelectBackend {
    fn name(&self) -> &'static str {
        "select"
    }

    fn add(&mut self, fd: RawSource, token: Token, interest: Interest) -> io::Result<()> {
        if !fits(fd, self.registry.entries.len()) {
            return Err(too_high(fd));
        }
        self.registry.add(token, Entry { fd, interest })
    }

    fn modify(&mut self, fd: RawSource, token: Token, interest: Interest) -> io::Result<()> {
        let (entry, registered) = self.registry.get_mut(fd)?;
        entry.interest = interest;
        *registered = token;
        Ok(())
    }

    fn delete(&mut self, fd: RawSource) -> io::Result<()> {
        self.registry.remove(fd)
    }

    fn poll(&mut self, events: &mut Vec<Readiness>, timeout: Option<Duration>) -> io::Result<()> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut remaining = timeout;
        loop {
            let registry = &self.registry;
            match select_once(&registry.entries, &registry.tokens, remaining, events) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::tests::tcp_pair;
    use crate::sys::raw_source;
    use std::io::Write;

    /// Unix: a descriptor numbered at or past FD_SETSIZE is refused.
    #[cfg(unix)]
    #[test]
    fn a_descriptor_past_fd_setsize_is_refused_and_the_others_work() {
        let (a, mut b) = tcp_pair();
        let mut backend = SelectBackend::new();
        let refused = backend
            .add(FD_SETSIZE as RawSource, Token(9), Interest::READABLE)
            .unwrap_err();
        assert!(refused.to_string().contains("FD_SETSIZE"), "{refused}");
        backend
            .add(raw_source(&a), Token(1), Interest::READABLE)
            .unwrap();
        b.write_all(b"x").unwrap();
        let mut events = Vec::new();
        backend
            .poll(&mut events, Some(Duration::from_secs(1)))
            .unwrap();
        assert_eq!(events, [Readiness::readable(Token(1))]);
        backend.delete(raw_source(&a)).unwrap();
        backend.poll(&mut events, Some(Duration::ZERO)).unwrap();
        assert!(events.is_empty());
    }

    /// Windows: an fd_set holds 64 sockets, whatever their numbers; the
    /// 65th is refused, and a place freed takes another.
    #[cfg(windows)]
    #[test]
    fn the_sixty_fifth_socket_is_refused_and_the_others_work() {
        let pairs: Vec<_> = (0..FD_SETSIZE + 1).map(|_| tcp_pair()).collect();
        let mut backend = SelectBackend::new();
        for (i, (ours, _)) in pairs[..FD_SETSIZE].iter().enumerate() {
            backend
                .add(raw_source(ours), Token(i), Interest::READABLE)
                .unwrap();
        }
        let last = raw_source(&pairs[FD_SETSIZE].0);
        let refused = backend
            .add(last, Token(FD_SETSIZE), Interest::READABLE)
            .unwrap_err();
        assert!(refused.to_string().contains("FD_SETSIZE 64"), "{refused}");
        (&pairs[FD_SETSIZE - 1].1).write_all(b"x").unwrap();
        let mut events = Vec::new();
        backend
            .poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(events, [Readiness::readable(Token(FD_SETSIZE - 1))]);
        backend.delete(raw_source(&pairs[0].0)).unwrap();
        backend
            .add(last, Token(FD_SETSIZE), Interest::READABLE)
            .unwrap();
    }

    /// A socket watched for writing whose connect failed is told (Winsock
    /// says so in the exception set, not as writable).
    #[test]
    fn a_refused_connect_is_reported_to_a_writer() {
        // A port nobody listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let socket = mio::net::TcpStream::connect(port).unwrap();
        let mut backend = SelectBackend::new();
        backend
            .add(raw_source(&socket), Token(3), Interest::WRITABLE)
            .unwrap();
        let mut events = Vec::new();
        backend
            .poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(events[0].writable);
        assert!(socket.take_error().unwrap().is_some() || socket.peer_addr().is_err());
    }
}
