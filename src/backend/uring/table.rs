//! The completion half of the io_uring backend: connections whose bytes
//! the ring moves, so that a turn's reads and writes cost no system call
//! of their own.
//!
//! A connection served this way is a [`RingStream`](super::RingStream). To the loop it is a
//! non-blocking socket like any other: `read` gives what has arrived or
//! `WouldBlock`, `write` takes bytes or says `WouldBlock`, and readiness
//! comes back through [`Backend::poll`](super::super::Backend::poll) under
//! the connection's token. Underneath:
//!
//! - **Receiving.** While the loop wants to read, one multishot `RECV` is
//!   armed on the socket, asking the kernel to wait until the socket is
//!   readable before it takes buffers (`POLL_FIRST`: a receive tried at once
//!   while the ring is empty would end for want of one, bytes or not). Each
//!   completion names the buffer the kernel filled, or the first of a bundle
//!   of them (6.10: all the bytes waiting, up to the buffers free, in one
//!   pass through TCP), and is reported as READABLE. The buffer is lent to
//!   the connection (sixteen at most; bytes beyond them are copied into its
//!   `received`), and `read` copies from it into the loop's buffer and gives
//!   it back: one copy, as on epoll. Buffers the loop left unread in its turn
//!   are copied into `received` before the next wait, so every buffer is back
//!   in the ring while it waits and an idle connection holds none. A
//!   connection that stops reading (paused, closed), or holds more than
//!   [`HOLD`](super::slot::HOLD) unread, has its receive cancelled, and TCP's
//!   own flow control holds the peer back again. A receive the kernel ends
//!   for want of buffers (`ENOBUFS`: more connections received at once than
//!   the ring holds) is not armed again at once, which would only meet the
//!   same want: the connection is *dry*, reported readable, and `read` takes
//!   its bytes straight from the socket (`recv` with `MSG_DONTWAIT`, one
//!   copy, as on epoll) until it would block or a read comes back short; then
//!   its receive is armed again.
//! - **Sending.** The loop's output buffer is taken whole when the connection
//!   has nothing queued
//!   ([`RingStream::write_whole`](super::RingStream::write_whole)): it
//!   becomes `sending` (or `queued`, behind a send in the kernel) and the
//!   loop gets an emptied buffer back, so a reply is copied once, by the
//!   kernel, as on epoll. Otherwise `write` copies into `queued` (at most
//!   [`SEND_ROOM`](super::slot::SEND_ROOM) bytes, then `WouldBlock`). One
//!   `SEND` at a time is in the kernel, from `sending`, which nothing touches
//!   until it completes: a short send is resubmitted for the rest, and then
//!   `queued` becomes `sending`. A completion that makes room is reported as
//!   WRITABLE to a connection that asked for it.
//! - **Closing.** A connection closing in order waits until the driver
//!   has sent what it took ([`RingStream::sending`](super::RingStream::sending): the loop keeps it
//!   open, as it does for its own output), and a write shutdown asked for
//!   before then is made after the last send. When the loop drops the
//!   connection, whatever of it is still in the kernel is cancelled at
//!   once and its socket closed; the buffers a cancelled send may still
//!   read are kept (in `limbo`) until its last completion, never freed
//!   while an entry points at them.
//!
//! Entries are not pushed as the loop asks: the descriptors with work are
//! listed, and the [`Driver`](super::driver::Driver) pushes their entries just before it waits, so a
//! turn's receives, sends and cancellations go in with the wait, in one
//! `io_uring_enter`.

use std::collections::VecDeque;
use std::io;
use std::os::unix::io::RawFd;
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types};

use super::buffers::{self, BufferRing};
use super::slot::{take_send_buffer_if_large, Receive, Slot};
use super::{user_data, Kind, CANCEL};
use crate::backend::{Readiness, Token};
use crate::Interest;

/// Large buffers the table keeps for the next burst of any connection:
/// without them each burst grows a buffer from nothing again (copying it
/// at each doubling) and frees it after.
const SPARES: usize = 32;

/// No spare is larger than this: a buffer a long stream grew further is
/// freed, so the spares hold 2 MiB at most.
const SPARE_CAPACITY: usize = 64 * 1024;

/// How long dropping the ring waits for the last completions of what it
/// cancelled; what is still in the kernel then is leaked, not freed.
pub(super) const LAST_WAIT: Duration = Duration::from_secs(1);

/// Every connection the ring serves, by descriptor, and the work they wait
/// for.
#[derive(Debug, Default)]
pub(super) struct Table {
    pub(super) slots: Vec<Option<Slot>>,
    /// Connections the loop dropped while an entry of theirs was in the
    /// kernel: kept, socket closed, until its last completion.
    pub(super) limbo: Vec<(RawFd, Slot)>,
    /// Descriptors whose entries (receive, cancellation, send) are to be
    /// pushed before the next wait.
    pub(super) pending: Vec<RawFd>,
    /// Descriptors with news for the loop that no completion will bring:
    /// a registration that finds bytes already held, or room to write.
    pub(super) reports: Vec<RawFd>,
    /// Emptied large buffers, for the next connection that needs one.
    pub(super) spares: Vec<Vec<u8>>,
    /// Descriptors that were lent receive buffers since the last wait.
    pub(super) lending: Vec<RawFd>,
    /// The buffers of the completion being read (kept for its capacity).
    filled: Vec<(u16, usize)>,
    /// Receives take bundles of buffers (the kernel can, 6.10).
    pub(super) bundles: bool,
    /// Completions that filled more than one buffer.
    pub(super) bundled: u64,
    /// Receives the kernel ended for want of buffers.
    pub(super) ran_dry: u64,
    /// Buffers the loop handed over whole, to be sent without a copy.
    pub(super) taken_whole: u64,
    pub(super) next_generation: u32,
}

impl Table {
    pub(super) fn slot(&mut self, fd: RawFd) -> Option<&mut Slot> {
        self.slots.get_mut(fd as usize)?.as_mut()
    }

    /// The connection a completion made under `generation` belongs to:
    /// an open one, or one in limbo.
    pub(super) fn slot_of(&mut self, fd: RawFd, generation: u32) -> Option<&mut Slot> {
        let open = self.slots.get(fd as usize).and_then(Option::as_ref);
        if open.is_some_and(|slot| slot.generation == generation) {
            return self.slot(fd);
        }
        self.limbo
            .iter_mut()
            .find(|(_, slot)| slot.generation == generation)
            .map(|(_, slot)| slot)
    }

    /// Whether `fd` is a connection the ring serves.
    pub(super) fn serves(&self, fd: RawFd) -> bool {
        matches!(self.slots.get(fd as usize), Some(Some(_)))
    }

    fn list_pending(&mut self, fd: RawFd) {
        if let Some(Some(slot)) = self.slots.get_mut(fd as usize) {
            list_once(&mut self.pending, &mut slot.pending, fd);
        }
    }

    /// Lists `fd`, whose slot the caller holds out of the table, for the
    /// next push.
    pub(super) fn list_pending_held(&mut self, fd: RawFd, slot: &mut Slot) {
        list_once(&mut self.pending, &mut slot.pending, fd);
    }

    fn list_report(&mut self, fd: RawFd) {
        if let Some(Some(slot)) = self.slots.get_mut(fd as usize) {
            list_once(&mut self.reports, &mut slot.reporting, fd);
        }
    }

    /// The loop registers `fd` (`Some`), changes what it wants, or
    /// deregisters it (`None`).
    pub(super) fn register(&mut self, fd: RawFd, token: Token, interest: Option<Interest>) {
        let Some(slot) = self.slot(fd) else { return };
        slot.token = token;
        slot.interest = interest;
        // Bytes held, or room to write, make no completion: say so now,
        // as epoll does for a socket registered while ready.
        if slot.readiness().is_some() {
            self.list_report(fd);
        }
        self.list_pending(fd);
    }

    /// Whether a wait must not block: news for the loop is waiting.
    pub(super) fn has_reports(&self) -> bool {
        !self.reports.is_empty()
    }

    /// Whether entries wait to be pushed.
    pub(super) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Whether an entry of a connection is in the kernel.
    pub(super) fn in_kernel(&self) -> bool {
        let open = self.slots.iter().flatten().any(|slot| slot.in_kernel());
        open || !self.limbo.is_empty()
    }

    /// Pushes the entries the listed connections wait for. If a push
    /// fails, the connections not yet served stay listed for the next.
    pub(super) fn push_entries(
        &mut self,
        mut push: impl FnMut(&squeue::Entry) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut listed = std::mem::take(&mut self.pending);
        let mut result = Ok(());
        for (at, &fd) in listed.iter().enumerate() {
            let bundles = self.bundles;
            if let Some(slot) = self.slot(fd) {
                slot.pending = false;
                result = push_for(fd, slot, bundles, &mut push);
            }
            if result.is_err() {
                for &rest in &listed[at..] {
                    if let Some(slot) = self.slot(rest) {
                        slot.pending = false;
                    }
                    self.list_pending(rest);
                }
                break;
            }
        }
        listed.clear();
        if self.pending.is_empty() {
            self.pending = listed; // its capacity, for the next turn
        }
        result
    }

    /// A completion of a receive: bytes, the end of input, or its end.
    pub(super) fn received(
        &mut self,
        fd: RawFd,
        generation: u32,
        cqe: &cqueue::Entry,
        buffers: &mut BufferRing,
    ) {
        // The buffers it filled, found before any is given back (kept in
        // the table for the vector's capacity).
        let mut filled = std::mem::take(&mut self.filled);
        filled.clear();
        if let Some(first) = cqueue::buffer_select(cqe.flags()) {
            let bytes = usize::try_from(cqe.result()).unwrap_or(0);
            filled.extend(buffers.filled(first, bytes.max(1)));
        }
        if filled.len() > 1 {
            self.bundled += 1;
        }
        self.take_received(fd, generation, cqe, &filled, buffers);
        self.filled = filled;
    }

    /// [`received`](Table::received), with the buffers it `filled`.
    fn take_received(
        &mut self,
        fd: RawFd,
        generation: u32,
        cqe: &cqueue::Entry,
        filled: &[(u16, usize)],
        buffers: &mut BufferRing,
    ) {
        let (result, flags) = (cqe.result(), cqe.flags());
        let last = !cqueue::more(flags);
        // Taken now (the slot borrows the table), put back if not used.
        let mut spare = self.spares.pop();
        let mut slot = self.slot_of(fd, generation);
        let open = slot.as_ref().is_some_and(|slot| !slot.closed);
        let mut lent = false;
        for &(id, len) in filled {
            match slot {
                Some(ref mut slot) if open && result > 0 => {
                    if slot.io().receive(id, len, buffers, &mut spare) {
                        lent = true;
                    } else {
                        buffers.give_back(id);
                    }
                }
                _ => buffers.give_back(id),
            }
        }
        let Some(slot) = slot else {
            self.spares.extend(spare);
            return;
        };
        match result {
            0 => slot.eof = true,
            // The ring ran out of buffers: the bytes wait in the socket.
            e if e == -libc::ENOBUFS && last => slot.dry = true,
            // We cancelled it (or an ENOBUFS that did not end it, which
            // the kernel does not send).
            e if e == -libc::ENOBUFS || e == -libc::ECANCELED => {}
            e if e < 0 => slot.fail(-e),
            _ => {}
        }
        let wants = slot.wants_receive();
        // Holding too much, or no longer wanted: cancelled with the next
        // push; ended by the kernel but wanted: armed again.
        let change = if last {
            slot.receive = Receive::Idle;
            wants
        } else {
            slot.receive == Receive::Armed && !wants
        };
        let slot_closed = slot.closed;
        self.spares.extend(spare);
        if lent {
            self.lending.push(fd);
        }
        if result == -libc::ENOBUFS && last {
            self.ran_dry += 1;
            buffers.ran_dry();
        }
        if slot_closed {
            self.bury_if_done();
            return;
        }
        if change {
            self.list_pending(fd);
        }
        if result != -libc::ECANCELED {
            self.list_report(fd);
        }
    }

    /// A completion of a send.
    pub(super) fn sent(&mut self, fd: RawFd, generation: u32, result: i32) {
        let Some(slot) = self.slot_of(fd, generation) else {
            return;
        };
        let slot_closed = slot.closed;
        let io = slot.io();
        io.send_in_kernel = false;
        let mut freed = None;
        let mut more_to_send = false;
        let mut failed = None;
        match usize::try_from(result) {
            Ok(n @ 1..) => {
                io.sent += n;
                if io.sent >= io.sending.len() {
                    io.sending.clear();
                    io.sent = 0;
                    std::mem::swap(&mut io.sending, &mut io.queued);
                    freed = take_send_buffer_if_large(&mut io.queued);
                }
                more_to_send = io.sent < io.sending.len();
                if !more_to_send && std::mem::take(&mut io.shut_when_sent) && !slot_closed {
                    // SAFETY: an open slot's descriptor is its stream's
                    // socket, open as long as the stream, which closes it
                    // only after taking the slot out of the table.
                    let _ = unsafe { libc::shutdown(fd, libc::SHUT_WR) };
                }
            }
            // Failed, or cancelled as its connection was dropped; a send
            // of nothing would only be sent again.
            _ => {
                // The bytes received before it can still be read.
                io.sending = VecDeque::new();
                io.queued = VecDeque::new();
                io.sent = 0;
                io.shut_when_sent = false;
                failed = Some(if result < 0 { -result } else { libc::EPIPE });
            }
        }
        if let Some(errno) = failed {
            slot.fail(errno);
        }
        self.recycle(freed);
        if slot_closed {
            self.bury_if_done();
            return;
        }
        if more_to_send {
            self.list_pending(fd);
        }
        self.list_report(fd);
    }

    /// Fills `events` from the reports, up to `capacity` in all; what does
    /// not fit waits for the next poll.
    pub(super) fn report(&mut self, events: &mut Vec<Readiness>, capacity: usize) {
        while events.len() < capacity {
            let Some(fd) = self.reports.pop() else { break };
            let Some(slot) = self.slot(fd) else { continue };
            slot.reporting = false;
            if let Some(report) = slot.readiness() {
                events.push(report);
            }
        }
    }

    /// Copies into their connections what the buffers lent since the last
    /// wait still hold, and gives them back, so that the ring has all its
    /// buffers while it waits (a connection the loop did not read in its
    /// turn, paused or out of budget, would keep them from the others).
    pub(super) fn spill_lent(&mut self, buffers: &mut BufferRing) {
        let mut lending = std::mem::take(&mut self.lending);
        for &fd in &lending {
            let spare = self.spares.pop();
            let io = self.slot(fd).and_then(|slot| slot.io.as_deref_mut());
            match io {
                Some(io) if !io.lent.is_empty() => io.spill(buffers, spare),
                _ => self.spares.extend(spare),
            }
        }
        lending.clear();
        self.lending = lending; // its capacity, for the next turn
    }

    /// Keeps a large emptied buffer for the next burst (a few at most).
    pub(super) fn recycle(&mut self, buffer: Option<Vec<u8>>) {
        if let Some(mut buffer) = buffer {
            if self.spares.len() < SPARES && buffer.capacity() <= SPARE_CAPACITY {
                buffer.clear();
                self.spares.push(buffer);
            }
        }
    }

    /// A buffer for bytes about to arrive: a spare if there is one.
    pub(super) fn fresh_buffer(&mut self) -> Vec<u8> {
        self.spares.pop().unwrap_or_default()
    }

    /// Frees what in limbo has no entry left in the kernel.
    pub(super) fn bury_if_done(&mut self) {
        self.limbo.retain(|(_, slot)| slot.in_kernel());
    }
}

/// Pushes what the connection on `fd` waits for: its receive armed or
/// cancelled, and its next send.
fn push_for(
    fd: RawFd,
    slot: &mut Slot,
    bundles: bool,
    push: &mut impl FnMut(&squeue::Entry) -> io::Result<()>,
) -> io::Result<()> {
    let receive = user_data(Kind::Receive, fd, slot.generation);
    match (slot.receive, slot.wants_receive()) {
        (Receive::Idle, true) => {
            let entry = if bundles {
                opcode::RecvMultiBundle::new(types::Fd(fd), buffers::GROUP).build()
            } else {
                opcode::RecvMulti::new(types::Fd(fd), buffers::GROUP).build()
            };
            let entry = poll_first(entry).user_data(receive);
            push(&entry)?;
            slot.receive = Receive::Armed;
        }
        (Receive::Armed, false) => {
            push(&cancel(receive))?;
            slot.receive = Receive::Cancelling;
        }
        _ => {}
    }
    let generation = slot.generation;
    let failed = slot.error().is_some();
    let Some(io) = slot.io.as_deref_mut().filter(|_| !failed) else {
        return Ok(());
    };
    if !io.send_in_kernel && io.sent < io.sending.len() {
        // Moves bytes only if the buffer wrapped, which a buffer filled
        // from empty and only then sent never does.
        let rest = &io.sending.make_contiguous()[io.sent..];
        let len = u32::try_from(rest.len()).unwrap_or(u32::MAX);
        let entry = opcode::Send::new(types::Fd(fd), rest.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(user_data(Kind::Send, fd, generation));
        // For the caller's SAFETY: `rest` is in `sending`'s heap buffer,
        // which is neither changed nor freed while `send_in_kernel` is
        // set: writes go to `queued`, and a slot the loop drops goes to
        // limbo until the send's last completion clears the flag.
        push(&entry)?;
        io.send_in_kernel = true;
    }
    Ok(())
}

/// An `ASYNC_CANCEL` of the entry with `data`; its own completion is
/// ignored.
pub(super) fn cancel(data: u64) -> squeue::Entry {
    opcode::AsyncCancel::new(data).build().user_data(CANCEL)
}

/// Puts `fd` on `list` unless its flag says it is there already.
fn list_once(list: &mut Vec<RawFd>, listed: &mut bool, fd: RawFd) {
    if !std::mem::replace(listed, true) {
        list.push(fd);
    }
}

/// Sets `IORING_RECVSEND_POLL_FIRST` on a receive: the kernel waits for
/// the socket to be readable before it takes buffers, rather than trying
/// at once. Without it a receive armed on an empty socket while the ring
/// has no buffer left ends at once (`ENOBUFS`), bytes or not, and a
/// connection drained that way would go on running dry each turn.
fn poll_first(mut entry: squeue::Entry) -> squeue::Entry {
    /// `IORING_RECVSEND_POLL_FIRST` (the crate keeps it private): known
    /// to every kernel with a multishot receive (6.0), which the driver
    /// needs anyway.
    const RECVSEND_POLL_FIRST: u16 = 1;
    const _: () = assert!(std::mem::size_of::<squeue::Entry>() == 64);
    // SAFETY: `squeue::Entry` is `repr(C)` around the kernel's 64-byte
    // `io_uring_sqe`, whose `ioprio` is the `u16` at offset 2 (after
    // `opcode` and `flags`, one byte each): the kernel's ABI, which
    // cannot change. The crate sets the receive's own flags there; this
    // adds one. Checked by `a_receive_waits_for_bytes_before_it_takes_buffers`.
    unsafe {
        let ioprio = std::ptr::addr_of_mut!(entry)
            .cast::<u8>()
            .add(2)
            .cast::<u16>();
        ioprio.write_unaligned(ioprio.read_unaligned() | RECVSEND_POLL_FIRST);
    }
    entry
}
