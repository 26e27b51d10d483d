//! Waking the poll from another thread, on any backend: a descriptor that
//! the loop watches like a socket, and that other threads make readable.
//! On Linux an `eventfd` (one descriptor, a counter); on other Unix
//! systems a pipe (the classic self-pipe trick); on Windows, where only
//! sockets can be polled, a UDP socket on loopback that sends to itself.
//! libuv's `uv_async_t` is built the same way.

#[cfg(unix)]
use std::fs::File;
use std::io;
#[cfg(unix)]
use std::io::{Read, Write};
#[cfg(unix)]
use std::os::unix::io::{AsRawFd, FromRawFd};

use crate::sys::RawSource;

/// The descriptor other threads write to, and the loop reads from.
#[cfg(unix)]
#[derive(Debug)]
pub(crate) struct Waker {
    /// What the loop watches and drains.
    reader: File,
    /// What other threads write to; the same file for an eventfd.
    writer: Option<File>,
}

#[cfg(unix)]
impl Waker {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn new() -> io::Result<Waker> {
        // SAFETY: eventfd takes no pointers; the descriptor it returns is
        // owned by the File from here on.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor nobody else owns.
        let reader = unsafe { File::from_raw_fd(fd) };
        Ok(Waker {
            reader,
            writer: None,
        })
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) fn new() -> io::Result<Waker> {
        let mut fds = [0; 2];
        // SAFETY: pipe writes two descriptors into the array it is given.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both are fresh descriptors, each owned by one File.
        let (reader, writer) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
        for fd in fds {
            set_nonblocking_cloexec(fd)?;
        }
        Ok(Waker {
            reader,
            writer: Some(writer),
        })
    }

    /// The descriptor to register for READABLE.
    pub(crate) fn raw_fd(&self) -> RawSource {
        self.reader.as_raw_fd()
    }

    /// Makes the descriptor readable. A full counter or pipe means a wake-up
    /// is already pending, which is all a wake-up has to achieve.
    pub(crate) fn wake(&self) -> io::Result<()> {
        let mut target = self.writer.as_ref().unwrap_or(&self.reader);
        match target.write(&1u64.to_ne_bytes()) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Consumes the pending wake-ups, so that a level-triggered backend does
    /// not report the descriptor again.
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 64];
        let mut reader = &self.reader;
        while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
    }
}

/// The socket other threads send a byte to, and the loop reads from: a
/// UDP socket on loopback connected to itself.
#[cfg(windows)]
#[derive(Debug)]
pub(crate) struct Waker {
    socket: std::net::UdpSocket,
}

#[cfg(windows)]
impl Waker {
    pub(crate) fn new() -> io::Result<Waker> {
        let socket = std::net::UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
        socket.connect(socket.local_addr()?)?;
        socket.set_nonblocking(true)?;
        Ok(Waker { socket })
    }

    /// The socket to register for READABLE.
    pub(crate) fn raw_fd(&self) -> RawSource {
        crate::sys::raw_source(&self.socket)
    }

    /// Makes the socket readable. A full receive buffer means wake-ups
    /// are already pending, which is all a wake-up has to achieve.
    pub(crate) fn wake(&self) -> io::Result<()> {
        match self.socket.send(&[1]) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Consumes the pending wake-ups, so that a level-triggered backend does
    /// not report the socket again.
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 64];
        while self.socket.recv(&mut buf).is_ok() {}
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", windows)))]
fn set_nonblocking_cloexec(fd: RawSource) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Backend, PollBackend, Token};
    use crate::Interest;
    use std::time::Duration;

    #[test]
    fn wake_makes_it_readable_and_drain_empties_it() {
        let waker = Waker::new().unwrap();
        let mut poller = PollBackend::new();
        poller
            .add(waker.raw_fd(), Token(1), Interest::READABLE)
            .unwrap();
        let mut events = Vec::new();
        let mut ready = |wait| {
            poller.poll(&mut events, Some(wait)).unwrap();
            events.len()
        };
        assert_eq!(ready(Duration::ZERO), 0);
        for _ in 0..3 {
            waker.wake().unwrap();
        }
        assert_eq!(ready(Duration::from_secs(5)), 1);
        waker.drain();
        assert_eq!(
            ready(Duration::ZERO),
            0,
            "drained wake-ups are not reported again"
        );
    }
}
