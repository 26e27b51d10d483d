//! What differs between Unix and Windows at the bottom of the crate, kept
//! in one place: how a socket is named to a backend.
//!
//! On Unix a backend watches file descriptors (`RawFd`); on Windows,
//! sockets (`RawSocket`). [`RawSource`] and [`AsRawSource`] are the one
//! or the other, so that the loop, its backends and the embedder's own
//! sources say "descriptor" once, and a Unix program that passes a
//! `RawFd` or an `impl AsRawFd` goes on compiling unchanged.

#[cfg(unix)]
pub use std::os::unix::io::{AsRawFd as AsRawSource, RawFd as RawSource};
#[cfg(windows)]
pub use std::os::windows::io::{AsRawSocket as AsRawSource, RawSocket as RawSource};

/// The descriptor (Unix) or socket (Windows) of `source`: `as_raw_fd()`
/// or `as_raw_socket()`, for code written once for both.
///
/// ```
/// let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
/// let raw: selectloop::RawSource = selectloop::raw_source(&socket);
/// # let _ = raw;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn raw_source(source: &(impl AsRawSource + ?Sized)) -> RawSource {
    #[cfg(unix)]
    {
        source.as_raw_fd()
    }
    #[cfg(windows)]
    {
        source.as_raw_socket()
    }
}

/// [`raw_source`] as a method, for anything with a descriptor.
pub(crate) trait RawSourceExt {
    /// The descriptor (Unix) or socket (Windows).
    fn raw_source(&self) -> RawSource;
}

impl<T: AsRawSource + ?Sized> RawSourceExt for T {
    fn raw_source(&self) -> RawSource {
        raw_source(self)
    }
}

/// Waits up to `ms` milliseconds for `source` to be readable (`poll(2)`,
/// `WSAPoll` on Windows): whether it is.
pub(crate) fn wait_readable(source: RawSource, ms: i32) -> bool {
    #[cfg(unix)]
    {
        let mut pollfd = libc::pollfd {
            fd: source,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the length of the call.
        unsafe { libc::poll(&mut pollfd, 1, ms) > 0 }
    }
    #[cfg(windows)]
    {
        use windows_sys::Win32::Networking::WinSock::{WSAPoll, POLLRDNORM, SOCKET, WSAPOLLFD};
        let mut pollfd = WSAPOLLFD {
            fd: source as SOCKET,
            events: POLLRDNORM,
            revents: 0,
        };
        // SAFETY: one valid WSAPOLLFD, for the length of the call.
        unsafe { WSAPoll(&mut pollfd, 1, ms) > 0 }
    }
}
