//! A connection whose bytes the ring moves, as the loop sees it: a
//! socket it reads and writes as a non-blocking one.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::io::RawFd;

use socket2::SockRef;

use super::buffers::BufferRing;
use super::driver::{Driver, Streams};
use super::slot::{take_if_large, Receive, Slot, HOLD, SEND_ROOM};
use super::table::Table;

/// A write this large starts from a spare buffer, not from nothing.
const LARGE_WRITE: usize = 4096;

/// A connection whose bytes the ring moves: a socket to the loop, which
/// reads and writes it as it would a non-blocking one.
#[derive(Debug)]
pub(crate) struct RingStream {
    streams: Streams,
    /// Closed when the stream drops, after its slot has left the table
    /// (and what of it was in the kernel was cancelled).
    socket: OwnedFd,
    unix: bool,
}

impl RingStream {
    pub(super) fn new(streams: Streams, socket: OwnedFd, unix: bool) -> RingStream {
        RingStream {
            streams,
            socket,
            unix,
        }
    }

    /// Whether it is a Unix domain socket (else TCP).
    pub(crate) fn is_unix(&self) -> bool {
        self.unix
    }

    /// Runs `f` on its slot and the table.
    fn with<R>(&self, f: impl FnOnce(&mut Slot, &mut Table) -> R) -> io::Result<R> {
        self.with_buffers(|slot, table, _| f(slot, table))
    }

    /// Runs `f` on its slot, the table and the receive buffers.
    fn with_buffers<R>(
        &self,
        f: impl FnOnce(&mut Slot, &mut Table, &mut BufferRing) -> R,
    ) -> io::Result<R> {
        let mut driver = self.streams.driver();
        let Driver { table, buffers, .. } = &mut *driver;
        let at = self.fd() as usize;
        // No connection is served without receive buffers.
        let (Some(buffers), Some(mut slot)) = (
            buffers.as_mut(),
            table.slots.get_mut(at).and_then(Option::take),
        ) else {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        };
        let result = f(&mut slot, table, buffers);
        table.slots[at] = Some(slot);
        Ok(result)
    }

    /// Runs `f` on the socket itself (for its addresses and options).
    pub(crate) fn socket<R>(&self, f: impl FnOnce(SockRef<'_>) -> R) -> R {
        f(SockRef::from(&self.socket))
    }

    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.fd();
        self.with_buffers(|slot, table, buffers| {
            if slot.reads_from_socket() {
                return read_dry(fd, slot, table, buf);
            }
            let held = slot.held();
            if held == 0 {
                return match slot.error() {
                    Some(errno) => Err(io::Error::from_raw_os_error(errno)),
                    None if slot.eof => Ok(0),
                    None => Err(io::ErrorKind::WouldBlock.into()),
                };
            }
            let io = slot.io();
            let n = io.read_into(buf, buffers);
            if io.read_at == io.received.len() {
                io.received.clear();
                io.read_at = 0;
                table.recycle(take_if_large(&mut io.received));
            }
            // A receive stopped for holding too much starts again.
            let resume = slot.receive == Receive::Idle && slot.wants_receive();
            if resume && slot.held() <= HOLD / 2 {
                table.list_pending_held(fd, slot);
            }
            // The bytes held ran out before `buf` did: a dry connection's
            // next bytes are in its socket, and the loop takes a short read
            // as the end of what there is.
            if n < buf.len() && slot.reads_from_socket() {
                return match read_dry(fd, slot, table, &mut buf[n..]) {
                    Ok(more) => Ok(n + more),
                    // Said by the next read.
                    Err(_) => Ok(n),
                };
            }
            Ok(n)
        })?
    }

    pub(crate) fn write(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let fd = self.fd();
        self.with(|slot, table| {
            if let Some(errno) = slot.error() {
                return Err(io::Error::from_raw_os_error(errno));
            }
            let io = slot.io();
            let mut room = SEND_ROOM.saturating_sub(io.queued.len());
            if room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let writing: usize = bufs.iter().map(|b| b.len()).sum();
            if io.queued.capacity() == 0 && writing > LARGE_WRITE {
                io.queued = table.fresh_buffer().into();
            }
            let mut taken = 0;
            for buf in bufs {
                let part = &buf[..buf.len().min(room)];
                io.queued.extend(part);
                taken += part.len();
                room -= part.len();
                if room == 0 {
                    break;
                }
            }
            let idle = io.sent_all();
            if idle && taken > 0 {
                io.sending.clear();
                io.sent = 0;
                std::mem::swap(&mut io.sending, &mut io.queued);
                table.list_pending_held(fd, slot);
            }
            Ok(taken)
        })?
    }

    /// Takes all of `bytes` to send as they are, and leaves an emptied
    /// buffer of its own in their place: the loop's output becomes the
    /// send's buffer, with no copy. Takes nothing (false) when bytes it
    /// took before still wait behind the send in the kernel (the new ones
    /// go after them: `write` copies), when `bytes` is empty or larger
    /// than [`SEND_ROOM`] (the room `write` would give), or when the
    /// connection failed (its `write` says how).
    pub(crate) fn write_whole(&mut self, bytes: &mut VecDeque<u8>) -> bool {
        if bytes.is_empty() || bytes.len() > SEND_ROOM {
            return false;
        }
        let fd = self.fd();
        let taken = self.with(|slot, table| {
            if slot.error().is_some() {
                return false;
            }
            let io = slot.io();
            if !io.queued.is_empty() {
                return false;
            }
            let idle = io.sent_all();
            if idle {
                io.sending.clear();
                io.sent = 0;
                std::mem::swap(&mut io.sending, bytes);
                // The loop gets back a buffer it can fill without
                // allocating, if the connection keeps one.
                if bytes.capacity() == 0 {
                    std::mem::swap(&mut io.queued, bytes);
                }
                table.list_pending_held(fd, slot);
            } else {
                // Sent when the send in the kernel is done, as `write`'s
                // copies would be.
                std::mem::swap(&mut io.queued, bytes);
            }
            table.taken_whole += 1;
            true
        });
        taken.unwrap_or(false)
    }

    /// Buffers its driver took whole from the loop (`write_whole`).
    #[cfg(test)]
    pub(crate) fn buffers_taken_whole(&self) -> u64 {
        self.streams.driver().table.taken_whole
    }

    /// Whether bytes it took are not yet sent: a connection closing in
    /// order waits for them.
    pub(crate) fn sending(&self) -> bool {
        self.with(|slot, _| slot.unsent()).unwrap_or(false)
    }

    /// Shuts `how`; a write shutdown waits for the bytes still to go.
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let socket = SockRef::from(&self.socket);
        self.with(|slot, _| {
            if how != Shutdown::Read && slot.unsent() {
                slot.io().shut_when_sent = true;
                if how == Shutdown::Write {
                    return Ok(());
                }
                return socket.shutdown(Shutdown::Read);
            }
            socket.shutdown(how)
        })?
    }

    /// The error a receive or send met, else the socket's own.
    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self.with(|slot, _| slot.error())? {
            Some(errno) => Ok(Some(io::Error::from_raw_os_error(errno))),
            None => SockRef::from(&self.socket).take_error(),
        }
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

/// Reads a dry connection's bytes from its socket (no receive of it is in
/// the kernel: the last one ended for want of buffers). Once the socket
/// is empty (it would block, or a read came back short, which the loop
/// takes as drained and waits for news), its receive is armed again with
/// the next push: only a receive brings news of bytes to come.
fn read_dry(fd: RawFd, slot: &mut Slot, table: &mut Table, buf: &mut [u8]) -> io::Result<usize> {
    let n = loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes; `fd` is
        // the slot's open socket (a slot the loop holds has its socket).
        // The socket is in blocking mode (the ring waits for it);
        // MSG_DONTWAIT makes this one call not wait.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        // A signal is no news for the loop: asked again at once.
        if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break n;
        }
    };
    let mut rearm = |slot: &mut Slot| {
        slot.dry = false;
        if slot.wants_receive() {
            table.list_pending_held(fd, slot);
        }
    };
    match usize::try_from(n) {
        Ok(0) if !buf.is_empty() => {
            slot.dry = false;
            slot.eof = true;
            Ok(0)
        }
        Ok(n) => {
            if n < buf.len() {
                rearm(slot);
            }
            Ok(n)
        }
        Err(_) => {
            let error = io::Error::last_os_error();
            match error.kind() {
                io::ErrorKind::WouldBlock => {
                    rearm(slot);
                    Err(error)
                }
                _ => {
                    slot.dry = false;
                    slot.fail(error.raw_os_error().unwrap_or(libc::EIO));
                    Err(error)
                }
            }
        }
    }
}

impl Drop for RingStream {
    fn drop(&mut self) {
        // The socket closes after this, as the fields drop.
        self.streams.driver().retire(self.fd());
    }
}
