//! The ring and the connections and listeners it serves, shared by the
//! backend, the connections' [`RingStream`]s and the listeners'
//! `RingListener`s: adopting a socket, pushing what the connections and
//! listeners wait for, retiring a connection the loop dropped, and a drop
//! that frees nothing the kernel may still touch.

use std::cell::{RefCell, RefMut};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::io::RawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use io_uring::{cqueue, IoUring};

use super::buffers::BufferRing;
use super::listener::Accepts;
use super::ring_stream::RingStream;
use super::slot::{Receive, Slot};
use super::table::{cancel, Table, LAST_WAIT};
use super::{decode, enter, push_entry, submit_queued, user_data, Kind};
use crate::limits::open_file_limit;

/// Slots reserved at most (4 MiB of address space), whatever the
/// descriptor limit: past that the table grows as a vector does.
const MOST_RESERVED: u64 = 1 << 17;

/// The ring and what the connections and listeners it serves keep:
/// shared by the backend (which waits and reaps completions), the
/// connections' [`RingStream`]s (which read, write and close) and the
/// listeners' `RingListener`s (which take what the ring accepted).
pub(super) struct Driver {
    pub(super) ring: IoUring,
    pub(super) table: Table,
    /// The listeners whose connections the ring accepts.
    pub(super) accepts: Accepts,
    /// The receive buffers, if the kernel has provided-buffer rings:
    /// without them no connection is adopted. Declared after `ring`, so
    /// dropped after it.
    pub(super) buffers: Option<BufferRing>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("connections", &self.table.slots.iter().flatten().count())
            .field("limbo", &self.table.limbo.len())
            .finish()
    }
}

/// A handle on the [`Driver`]: the loop adopts connections through it.
#[derive(Clone, Debug)]
pub(crate) struct Streams(Rc<RefCell<Driver>>);

impl Streams {
    pub(super) fn new(ring: IoUring) -> Streams {
        let mut table = Table::default();
        // Room for a slot per descriptor the process may open, reserved
        // as address space only: a slot is backed by memory once a
        // connection uses it, and the table never grows by copying
        // (which would leave the old copies resident in the heap).
        let descriptors = open_file_limit().map_or(0, |limit| limit.min(MOST_RESERVED));
        table.slots.reserve_exact(descriptors as usize);
        Streams(Rc::new(RefCell::new(Driver {
            ring,
            table,
            accepts: Accepts::default(),
            buffers: None,
        })))
    }

    pub(super) fn driver(&self) -> RefMut<'_, Driver> {
        self.0.borrow_mut()
    }

    /// Hands `socket` (a connected TCP or Unix stream socket) to the
    /// ring: from now on its bytes move through completions. The socket is
    /// put back in blocking mode, since the kernel then waits for it
    /// inside the ring rather than failing an entry with `EAGAIN`; no
    /// system call of the loop's ever blocks on it (the direct read of a
    /// dry connection says `MSG_DONTWAIT`). The ring first tries each
    /// entry without waiting and then waits on the socket's readiness
    /// whatever its mode, which is why a late reader's sends pass on a
    /// non-blocking socket too in the tests; but a send it hands to its
    /// worker threads, when those retries run out under load, honours
    /// `O_NONBLOCK` and fails with `EAGAIN`.
    ///
    /// # Errors
    ///
    /// The mode could not be changed; the socket is dropped.
    pub(crate) fn adopt(&self, socket: OwnedFd, unix: bool) -> io::Result<RingStream> {
        set_blocking(socket.as_raw_fd())?;
        Ok(self.adopt_blocking(socket, unix))
    }

    /// Puts the socket `fd` in the mode [`adopt_blocking`]
    /// (Streams::adopt_blocking) wants, before its owner hands it over.
    ///
    /// # Errors
    ///
    /// The mode could not be changed; the socket is as it was.
    pub(crate) fn prepare(fd: RawFd) -> io::Result<()> {
        set_blocking(fd)
    }

    /// As [`adopt`](Streams::adopt), for a socket in blocking mode
    /// already (one the ring accepted, or [`prepare`](Streams::prepare)d).
    pub(crate) fn adopt_blocking(&self, socket: OwnedFd, unix: bool) -> RingStream {
        let fd = socket.as_raw_fd();
        let table = &mut self.driver().table;
        table.next_generation = table.next_generation.wrapping_add(1);
        let slot = Slot::new(table.next_generation);
        let at = fd as usize;
        if at >= table.slots.len() {
            table.slots.resize_with(at + 1, || None);
        }
        table.slots[at] = Some(slot);
        RingStream::new(self.clone(), socket, unix)
    }
}

impl Driver {
    /// Pushes the entries the connections and listeners wait for.
    pub(super) fn push_entries(&mut self) -> io::Result<()> {
        let ring = &mut self.ring;
        // SAFETY: accepts and their cancellations point at no memory (no
        // address is asked for).
        self.accepts
            .push_entries(|entry| unsafe { push_entry(ring, entry) })?;
        // SAFETY: `Table::push_entries` pushes receives (which point at
        // the buffer ring, alive as long as the ring), cancellations (no
        // memory) and sends whose buffer it keeps unchanged until their
        // last completion (see there).
        self.table
            .push_entries(|entry| unsafe { push_entry(ring, entry) })
    }

    /// The loop dropped the connection on `fd`: what of it is in the
    /// kernel is cancelled now (submitted at once, since the loop may
    /// never wait again), its socket is closed, and its buffers wait in
    /// limbo for the last completions.
    pub(super) fn retire(&mut self, fd: RawFd) {
        let Some(mut slot) = self.table.slots.get_mut(fd as usize).and_then(Option::take) else {
            return;
        };
        if let (Some(io), Some(buffers)) = (slot.io.as_deref_mut(), self.buffers.as_mut()) {
            io.give_back_lent(buffers);
        }
        if slot.receive == Receive::Armed {
            let data = user_data(Kind::Receive, fd, slot.generation);
            // SAFETY: a cancellation points at no memory.
            let _ = unsafe { push_entry(&mut self.ring, &cancel(data)) };
            slot.receive = Receive::Cancelling;
        }
        if slot.send_in_kernel() {
            let data = user_data(Kind::Send, fd, slot.generation);
            // SAFETY: as above.
            let _ = unsafe { push_entry(&mut self.ring, &cancel(data)) };
        }
        if slot.in_kernel() {
            // A cancellation runs as it is submitted: the socket's file,
            // which an armed entry holds, is released before it closes.
            let _ = submit_queued(&mut self.ring);
            slot.closed = true;
            if let Some(io) = slot.io.as_deref_mut() {
                // Only `sending` may still be read by the kernel.
                io.queued = VecDeque::new();
                io.received = Vec::new();
            }
            self.table.limbo.push((fd, slot));
        }
    }
}

impl Driver {
    /// Cancels whatever of the connections is still in the kernel and
    /// waits, `patience` at most, for the last completions (see
    /// `reap_last`). Whether nothing is left in the kernel.
    pub(super) fn cancel_all_and_wait(&mut self, patience: Duration) -> bool {
        let mut cancels = Vec::new();
        let open = self.table.slots.iter().enumerate();
        let open = open.filter_map(|(fd, slot)| Some((fd as RawFd, slot.as_ref()?)));
        let buried = self.table.limbo.iter().map(|(fd, slot)| (*fd, slot));
        for (fd, slot) in open.chain(buried) {
            if slot.receive == Receive::Armed {
                cancels.push(user_data(Kind::Receive, fd, slot.generation));
            }
            if slot.send_in_kernel() {
                cancels.push(user_data(Kind::Send, fd, slot.generation));
            }
        }
        for data in cancels {
            // SAFETY: a cancellation points at no memory.
            if unsafe { push_entry(&mut self.ring, &cancel(data)) }.is_err() {
                break;
            }
        }
        // Completions already waiting are read first: an accept's may
        // carry a socket, closed here rather than left in the ring. (No
        // accept is armed now: each listener's holds a handle on the
        // driver, and cancels its accept as it goes.)
        let _ = self.ring.submit();
        self.reap_last();
        let give_up_at = Instant::now() + patience;
        while self.table.in_kernel() && Instant::now() < give_up_at {
            if enter(&mut self.ring, Some(Duration::from_millis(10))).is_err() {
                break;
            }
            self.reap_last();
        }
        !self.table.in_kernel()
    }

    /// Reads the completions waiting while the ring is dropped: each
    /// entry's end noted, accepted sockets closed (with their listener's
    /// queue, or at once). The receive buffers they name are not given
    /// back: the buffers go with the ring.
    fn reap_last(&mut self) {
        for cqe in self.ring.completion() {
            match decode(cqe.user_data()) {
                Some((Kind::Receive, fd, generation)) => {
                    if let Some(slot) = self.table.slot_of(fd, generation) {
                        if !cqueue::more(cqe.flags()) {
                            slot.receive = Receive::Idle;
                        }
                    }
                }
                Some((Kind::Send, fd, generation)) => {
                    if let Some(slot) = self.table.slot_of(fd, generation) {
                        slot.io().send_in_kernel = false;
                    }
                }
                Some((Kind::Accept, fd, generation)) => {
                    self.accepts.accepted(fd, generation, &cqe);
                }
                _ => {}
            }
        }
        self.table.bury_if_done();
    }
}

impl Drop for Driver {
    /// Cancels what is still in the kernel and waits (a second at most)
    /// for its last completions, so that no send still reads a buffer and
    /// no receive still fills one when they are freed. What does not
    /// complete in that time is leaked, not freed.
    fn drop(&mut self) {
        if !self.cancel_all_and_wait(LAST_WAIT) {
            warn!("io_uring entries outlived their ring's last wait: their buffers are leaked");
            std::mem::forget(std::mem::take(&mut self.table));
            std::mem::forget(self.buffers.take());
        }
    }
}

fn set_blocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller owns, with integer
    // arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
