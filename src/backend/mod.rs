//! The multiplexer behind the loop: `select(2)`'s job, behind one small trait.
//!
//! Redis's `ae_select.c` shows how little a backend needs: create, add,
//! delete, poll, name. [`Backend`] keeps it that small (with `modify` for a
//! changed interest), so a `poll(2)` or `select(2)` backend, written for
//! teaching or for a platform mio does not serve, can drop in without touching
//! the loop. It speaks only descriptors and the crate's own [`Token`]: even
//! the cross-thread wake-up is a descriptor registered like a socket. The default is [`MioBackend`]: epoll on Linux, kqueue on the BSDs
//! and macOS.
//!
//! Backends report [`Readiness`] values, plain data that a test can also
//! build by hand to drive the loop with a synthetic batch of events.

mod mio_backend;
mod poll_backend;
mod registry;
mod select_backend;
#[cfg(target_os = "linux")]
mod uring;

use crate::sys::RawSource;
use std::io;
use std::time::Duration;

use crate::Interest;

pub use crate::token::Token;
pub use mio_backend::MioBackend;
pub use poll_backend::PollBackend;
pub use select_backend::SelectBackend;
#[cfg(target_os = "linux")]
pub use uring::UringBackend;
#[cfg(target_os = "linux")]
pub(crate) use uring::{Next, RingListener, RingStream, Streams};

/// Where there is no io_uring, no connection is served by completions.
#[cfg(not(target_os = "linux"))]
#[derive(Clone, Debug)]
pub(crate) enum Streams {}

/// Which multiplexer [`Reactor::with_config`](crate::Reactor::with_config)
/// builds ([`Config::backend`](crate::Config::backend)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendKind {
    /// mio: epoll on Linux, kqueue on the BSDs and macOS. Edge-triggered;
    /// the cost of a wait does not grow with idle connections.
    #[default]
    Epoll,
    /// `poll(2)`: level-triggered, every watched descriptor handed to the
    /// kernel on every wait.
    Poll,
    /// `select(2)`: level-triggered, bitmaps rebuilt on every wait, and no
    /// descriptor at or above `FD_SETSIZE` (1,024): a connection that gets
    /// one is refused, logged and counted
    /// ([`Stats::unwatchable`](crate::Stats::unwatchable)).
    Select,
    /// io_uring (Linux): the ring itself accepts the connections (a
    /// multishot accept per listener), receives and sends their bytes (a
    /// multishot receive into buffers the kernel picks from a registered
    /// ring, Linux 6.0 or later), and a multishot poll watches the other
    /// descriptors (5.13 or later); a
    /// turn's receives, sends and changes go to the kernel with its wait,
    /// in one system call. Edge-like, as epoll. The handler never knows.
    /// Where io_uring cannot be had (an older kernel, another system,
    /// `kernel.io_uring_disabled`, a seccomp filter that refuses
    /// `io_uring_setup`) the reactor says so in one log line and runs on
    /// [`Epoll`](BackendKind::Epoll); on a kernel without provided-buffer
    /// rings, connections are polled as on epoll.
    Uring,
}

impl BackendKind {
    /// The kind named `epoll`, `poll` or `select`, as a command line gives it.
    pub fn from_name(name: &str) -> Option<BackendKind> {
        match name {
            "epoll" | "kqueue" | "mio" => Some(BackendKind::Epoll),
            "poll" => Some(BackendKind::Poll),
            "select" => Some(BackendKind::Select),
            "uring" | "io_uring" => Some(BackendKind::Uring),
            _ => None,
        }
    }

    /// The name [`from_name`](BackendKind::from_name) takes back, as
    /// `--backend` spells it: `epoll`, `poll`, `select` or `uring`.
    ///
    /// ```
    /// use selectloop::backend::BackendKind;
    /// assert_eq!(BackendKind::from_name(BackendKind::Poll.name()), Some(BackendKind::Poll));
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Epoll => "epoll",
            BackendKind::Poll => "poll",
            BackendKind::Select => "select",
            BackendKind::Uring => "uring",
        }
    }

    /// Builds the backend of this kind, taking at most `capacity` events
    /// per poll, and, for io_uring, the table through which connections
    /// are served by completions; io_uring, where it cannot be had, gives
    /// epoll (one log line says why).
    pub(crate) fn open(self, capacity: usize) -> io::Result<(Box<dyn Backend>, Option<Streams>)> {
        Ok(match self {
            BackendKind::Poll => (Box::new(PollBackend::new()), None),
            BackendKind::Select => (Box::new(SelectBackend::new()), None),
            BackendKind::Epoll => (Box::new(MioBackend::new(capacity)?), None),
            BackendKind::Uring => uring_or_epoll(capacity)?,
        })
    }
}

#[cfg(target_os = "linux")]
fn uring_or_epoll(capacity: usize) -> io::Result<(Box<dyn Backend>, Option<Streams>)> {
    match UringBackend::with_streams(capacity) {
        Ok((uring, streams)) => Ok((Box::new(uring), streams)),
        Err(refused) => {
            warn!("io_uring is not available ({refused}): running on epoll");
            Ok((Box::new(MioBackend::new(capacity)?), None))
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn uring_or_epoll(capacity: usize) -> io::Result<(Box<dyn Backend>, Option<Streams>)> {
    warn!("io_uring is Linux's: running on kqueue");
    Ok((Box::new(MioBackend::new(capacity)?), None))
}

/// The `poll` flags, as `poll(2)` (Unix) or `WSAPoll` (Windows) spells
/// them: the same names, different values.
pub(crate) mod poll_bits {
    #[cfg(unix)]
    pub(crate) use libc::{c_short as Mask, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI};
    #[cfg(windows)]
    pub(crate) use windows_sys::Win32::Networking::WinSock::{
        POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI, WSAPOLL_EVENT_FLAGS as Mask,
    };
}

/// What a `poll(2)` result mask (`revents`, an io_uring poll's
/// completion, or `WSAPoll`'s) says about a descriptor.
pub(crate) fn readiness_from_poll(token: Token, revents: poll_bits::Mask) -> Readiness {
    use poll_bits::*;
    let r = revents;
    Readiness {
        token,
        readable: r & (POLLIN | POLLPRI | POLLHUP | POLLERR) != 0,
        writable: r & (POLLOUT | POLLERR) != 0,
        read_closed: poll_read_closed(r),
        // Winsock's POLLHUP comes with a peer's end of input too, when
        // the peer may still read: only Unix's means both directions.
        write_closed: cfg!(unix) && r & POLLHUP != 0,
        error: r & (POLLERR | POLLNVAL) != 0,
    }
}

fn poll_read_closed(revents: poll_bits::Mask) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        revents & (libc::POLLHUP | libc::POLLRDHUP) != 0
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        revents & poll_bits::POLLHUP != 0
    }
}

/// What the backend learnt about one registered descriptor in one poll.
///
/// The flags mirror `mio::event::Event`. Like every poller, a backend may
/// report spurious readiness: the loop treats a flag as "worth trying", and
/// `WouldBlock` as the real answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// The token the descriptor was registered with.
    pub token: Token,
    /// Reading may make progress (data, end of input, or an error).
    pub readable: bool,
    /// Writing may make progress.
    pub writable: bool,
    /// The peer will send nothing more (`EPOLLRDHUP`/`EPOLLHUP`).
    pub read_closed: bool,
    /// The peer will take nothing more.
    pub write_closed: bool,
    /// The socket has a pending error (`EPOLLERR`).
    pub error: bool,
}

impl Readiness {
    /// No readiness at all for `token`; set the flags that apply.
    pub fn none(token: Token) -> Readiness {
        Readiness {
            token,
            readable: false,
            writable: false,
            read_closed: false,
            write_closed: false,
            error: false,
        }
    }

    /// A readable event for `token`, as a test or the ready list builds it.
    pub fn readable(token: Token) -> Readiness {
        Readiness {
            readable: true,
            ..Readiness::none(token)
        }
    }

    /// Adds what `other` says to what this report says: two reports of
    /// one descriptor in one batch made one (the io_uring backend's).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn merge(&mut self, other: &Readiness) {
        self.readable |= other.readable;
        self.writable |= other.writable;
        self.read_closed |= other.read_closed;
        self.write_closed |= other.write_closed;
        self.error |= other.error;
    }

    /// A writable event for `token`.
    pub fn writable(token: Token) -> Readiness {
        Readiness {
            writable: true,
            ..Readiness::none(token)
        }
    }
}

/// A readiness multiplexer: what `select`, `poll`, `epoll` and `kqueue` share.
///
/// Implementations register descriptors the loop owns; they must never close
/// them.
pub trait Backend: std::fmt::Debug {
    /// A short name for logs and benchmarks, such as `"epoll"`.
    fn name(&self) -> &'static str;

    /// Starts watching `fd` for `interest`, reporting it under `token`.
    ///
    /// # Errors
    ///
    /// The system's refusal (for example `ENOMEM`, or `EEXIST` if `fd` is
    /// already watched).
    fn add(&mut self, fd: RawSource, token: Token, interest: Interest) -> io::Result<()>;

    /// Changes what `fd` is watched for.
    ///
    /// # Errors
    ///
    /// The system's refusal, such as `ENOENT` if `fd` is not watched.
    fn modify(&mut self, fd: RawSource, token: Token, interest: Interest) -> io::Result<()>;

    /// Stops watching `fd`. Called before the loop closes a descriptor.
    ///
    /// # Errors
    ///
    /// The system's refusal, such as `ENOENT`.
    fn delete(&mut self, fd: RawSource) -> io::Result<()>;

    /// Waits until something is ready or `timeout` passes (`None`: no limit),
    /// then replaces the contents of `events` with what is ready.
    ///
    /// A signal interrupting the wait (`EINTR`) is not an error: the
    /// implementation waits again for the time that remains.
    ///
    /// # Errors
    ///
    /// A failure of the wait itself, which the loop cannot recover from.
    fn poll(&mut self, events: &mut Vec<Readiness>, timeout: Option<Duration>) -> io::Result<()>;

    /// Hands the kernel what waits unsubmitted (see
    /// [`has_unsubmitted`](Backend::has_unsubmitted)) without waiting for
    /// anything. [`Reactor::run_once`](crate::Reactor::run_once) calls it
    /// as a turn ends, since no wait may follow soon; the default does
    /// nothing, for backends whose changes take effect as they are made.
    ///
    /// # Errors
    ///
    /// The system's refusal.
    fn submit(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// The poller's own descriptor (the epoll or kqueue fd), if it has one:
    /// readable when events are waiting, so another loop can watch it.
    fn raw_fd(&self) -> Option<RawSource> {
        None
    }

    /// Whether changes of interest (or a ring's reads and writes) wait
    /// unsubmitted until the next [`poll`](Backend::poll), or news is
    /// waiting that the backend's descriptor will not signal: a loop
    /// driven from outside through [`raw_fd`](Backend::raw_fd) must then
    /// poll again at once.
    fn has_unsubmitted(&mut self) -> bool {
        false
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A connected pair of TCP sockets on loopback (blocking): ours, then
    /// the peer's.
    pub(crate) fn tcp_pair() -> (std::net::TcpStream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (peer, _) = listener.accept().unwrap();
        (ours, peer)
    }

    #[test]
    fn every_kind_is_found_by_its_name_and_its_aliases() {
        let kinds = [
            BackendKind::Epoll,
            BackendKind::Poll,
            BackendKind::Select,
            BackendKind::Uring,
        ];
        let names: Vec<_> = kinds.iter().map(|k| k.name()).collect();
        assert_eq!(names, ["epoll", "poll", "select", "uring"]);
        for kind in kinds {
            assert_eq!(BackendKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(BackendKind::from_name("kqueue"), Some(BackendKind::Epoll));
        assert_eq!(BackendKind::from_name("mio"), Some(BackendKind::Epoll));
        assert_eq!(BackendKind::from_name("io_uring"), Some(BackendKind::Uring));
        assert_eq!(BackendKind::from_name("iocp"), None);
    }

    #[test]
    fn a_poll_mask_says_what_each_bit_means() {
        use super::poll_bits::*;
        let flags = |revents| {
            let r = readiness_from_poll(Token(1), revents);
            [
                r.readable,
                r.writable,
                r.read_closed,
                r.write_closed,
                r.error,
            ]
        };
        assert_eq!(flags(0), [false; 5]);
        assert_eq!(flags(POLLIN), [true, false, false, false, false]);
        assert_eq!(flags(POLLPRI), [true, false, false, false, false]);
        assert_eq!(flags(POLLOUT), [false, true, false, false, false]);
        // Winsock's POLLHUP may leave the peer reading: not write_closed.
        assert_eq!(flags(POLLHUP), [true, false, true, cfg!(unix), false]);
        assert_eq!(flags(POLLERR), [true, true, false, false, true]);
        assert_eq!(flags(POLLNVAL), [false, false, false, false, true]);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        assert_eq!(flags(libc::POLLRDHUP), [false, false, true, false, false]);
    }

    #[test]
    fn merged_reports_keep_every_flag_either_had() {
        let flags = |r: &Readiness| {
            [
                r.readable,
                r.writable,
                r.read_closed,
                r.write_closed,
                r.error,
            ]
        };
        let mut first = Readiness::readable(Token(4));
        first.merge(&Readiness::none(Token(4)));
        assert_eq!(flags(&first), [true, false, false, false, false]);
        let every = [
            Readiness::writable(Token(4)),
            Readiness {
                read_closed: true,
                ..Readiness::none(Token(4))
            },
            Readiness {
                write_closed: true,
                ..Readiness::none(Token(4))
            },
            Readiness {
                error: true,
                ..Readiness::none(Token(4))
            },
        ];
        for other in &every {
            first.merge(other);
        }
        assert_eq!(flags(&first), [true; 5]);
        assert_eq!(first.token, Token(4));
    }
}
