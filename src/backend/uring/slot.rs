//! One connection as the ring serves it: where its receive stands, the
//! bytes it holds unread (in receive buffers lent to it, then copied) and
//! the bytes on their way out.

use std::collections::VecDeque;
use std::num::NonZeroI32;

use super::buffers::BufferRing;
use crate::backend::{Readiness, Token};
use crate::Interest;

/// Bytes a connection's `write` takes beyond the send in the kernel: the
/// driver's share of what a socket's send buffer does on epoll.
pub(crate) const SEND_ROOM: usize = 64 * 1024;

/// Received bytes a connection may hold unread before its receive is
/// cancelled (re-armed once the loop has read half of them). A bundle may
/// take it past this by what was waiting in the socket, as the ring's
/// buffers allow.
pub(crate) const HOLD: usize = 256 * 1024;

/// A buffer kept by a connection whose bytes were read goes to the
/// table's spares past this size, so a burst does not stay resident in
/// every connection that had one.
const KEPT_CAPACITY: usize = 16 * 1024;

/// Receive buffers a connection may hold lent at once (64 KiB: a burst of
/// sixteen 4 KiB messages); its bytes beyond them are copied.
const LENT_MOST: usize = 16;

/// Where a connection's receive stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Receive {
    /// None in the kernel.
    Idle,
    /// A multishot receive is armed.
    Armed,
    /// Its cancellation is submitted; the last completion is to come.
    Cancelling,
}

/// One connection served by the ring: what it costs beside the loop's own
/// connection, 32 bytes while it is idle (its socket is the
/// [`RingStream`](super::RingStream)'s, its descriptor the slot's place in
/// the table).
#[derive(Debug)]
pub(super) struct Slot {
    /// Tells this socket's completions from those of an earlier socket
    /// that had the same descriptor.
    pub(super) generation: u32,
    /// A receive or send failed with this `errno`: reported, and returned
    /// by reads (after the bytes that came before it) and writes.
    error: Option<NonZeroI32>,
    /// The loop's token, while it is registered (`interest` is `Some`).
    pub(super) token: Token,
    pub(super) interest: Option<Interest>,
    pub(super) receive: Receive,
    /// The peer's end of input came (a receive of 0 bytes).
    pub(super) eof: bool,
    /// Its receive ended for want of buffers: `read` takes from the
    /// socket itself until it would block (or a read comes back short).
    pub(super) dry: bool,
    /// On the table's `pending` list.
    pub(super) pending: bool,
    /// On the table's `reports` list.
    pub(super) reporting: bool,
    /// The loop dropped it and its socket is closed: it waits in limbo
    /// for the last completions of what it had in the kernel.
    pub(super) closed: bool,
    /// Its bytes, from the first that moved: a connection that never
    /// spoke costs only the fields above.
    pub(super) io: Option<Box<Io>>,
}

/// The bytes of one connection on their way in and out.
#[derive(Debug, Default)]
pub(super) struct Io {
    /// Receive buffers holding its next bytes, in order, before those of
    /// `received`: read from where the kernel put them (one copy, as on
    /// epoll) and given back as they are read; copied into `received`
    /// before the next wait if the loop left them unread, since the ring
    /// needs them back.
    pub(super) lent: VecDeque<Lent>,
    /// Unread bytes in `lent`.
    pub(super) lent_bytes: usize,
    /// Bytes copied out of receive buffers, after those of `lent`.
    pub(super) received: Vec<u8>,
    /// Bytes of `received` already read.
    pub(super) read_at: usize,
    /// The bytes of the send in the kernel (or about to be); nothing
    /// changes it while `send_in_kernel`. A ring buffer, as the loop's
    /// output is, so that one can take the other's place.
    pub(super) sending: VecDeque<u8>,
    /// Bytes of `sending` the kernel has sent.
    pub(super) sent: usize,
    pub(super) send_in_kernel: bool,
    /// A write shutdown asked for while bytes were still to go: made
    /// after the last send.
    pub(super) shut_when_sent: bool,
    /// Bytes written since `sending` was taken.
    pub(super) queued: VecDeque<u8>,
}

impl Slot {
    /// A connection with nothing in the kernel yet.
    pub(super) fn new(generation: u32) -> Slot {
        Slot {
            generation,
            error: None,
            token: Token(0),
            interest: None,
            receive: Receive::Idle,
            eof: false,
            dry: false,
            pending: false,
            reporting: false,
            closed: false,
            io: None,
        }
    }

    /// The `errno` a receive or send of it failed with.
    pub(super) fn error(&self) -> Option<i32> {
        self.error.map(NonZeroI32::get)
    }

    /// Its receive or send failed with `errno` (an `errno` of 0, which no
    /// failure has, is taken as `EIO`).
    pub(super) fn fail(&mut self, errno: i32) {
        self.error = NonZeroI32::new(errno).or(NonZeroI32::new(libc::EIO));
    }

    /// Its bytes, made when first needed.
    pub(super) fn io(&mut self) -> &mut Io {
        self.io.get_or_insert_with(Box::default)
    }

    /// Whether its next bytes are to be read from the socket itself: its
    /// receive ran dry, and it holds none from before (nor an error).
    pub(super) fn reads_from_socket(&self) -> bool {
        self.dry && self.held() == 0 && self.error.is_none()
    }

    pub(super) fn held(&self) -> usize {
        self.io
            .as_ref()
            .map_or(0, |io| io.lent_bytes + io.received.len() - io.read_at)
    }

    fn queued(&self) -> usize {
        self.io.as_ref().map_or(0, |io| io.queued.len())
    }

    pub(super) fn wants_receive(&self) -> bool {
        self.interest.is_some_and(Interest::is_readable)
            && !self.eof
            && !self.dry
            && self.error.is_none()
            && !self.closed
            && self.held() < HOLD
    }

    /// Bytes taken by `write` and not yet sent.
    pub(super) fn unsent(&self) -> bool {
        self.error.is_none()
            && self
                .io
                .as_ref()
                .is_some_and(|io| io.sent < io.sending.len() || !io.queued.is_empty())
    }

    /// Whether a send of it is in the kernel.
    pub(super) fn send_in_kernel(&self) -> bool {
        self.io.as_ref().is_some_and(|io| io.send_in_kernel)
    }

    /// Whether an entry of it is in the kernel.
    pub(super) fn in_kernel(&self) -> bool {
        self.send_in_kernel() || self.receive != Receive::Idle
    }

    /// What the loop is to hear about it now, if anything.
    pub(super) fn readiness(&self) -> Option<Readiness> {
        let token = self.token;
        let interest = self.interest?;
        let failed = self.error.is_some();
        let report = Readiness {
            token,
            readable: interest.is_readable() && (self.held() > 0 || self.dry || self.eof || failed),
            writable: interest.is_writable() && (self.queued() < SEND_ROOM || failed),
            // With bytes still held too, so that the loop reads on past a
            // short read to the end (or the error), as after epoll's
            // EPOLLRDHUP.
            read_closed: self.eof || failed,
            write_closed: false,
            // Bytes that came before the error are read first.
            error: failed && self.held() == 0,
        };
        (report != Readiness::none(token)).then_some(report)
    }
}

/// A receive buffer lent to a connection: `len` unread bytes from `at`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Lent {
    id: u16,
    at: u16,
    len: u16,
}

impl Io {
    /// Whether no send is in the kernel and `sending` has all gone, so
    /// that the next bytes may take its place.
    pub(super) fn sent_all(&self) -> bool {
        !self.send_in_kernel && self.sent >= self.sending.len()
    }

    /// Takes the first `len` bytes of receive buffer `id`: lent, when none
    /// are held in `received` (they would come after those) and it holds
    /// fewer than [`LENT_MOST`]; else copied into `received` (grown from
    /// `spare` if it has no buffer). Whether the buffer was lent: if not,
    /// it is the caller's to give back.
    pub(super) fn receive(
        &mut self,
        id: u16,
        len: usize,
        buffers: &BufferRing,
        spare: &mut Option<Vec<u8>>,
    ) -> bool {
        let len = len.min(super::buffers::SIZE);
        if self.received.len() == self.read_at && self.lent.len() < LENT_MOST {
            self.lent.push_back(Lent {
                id,
                at: 0,
                len: len as u16, // at most SIZE, 4096
            });
            self.lent_bytes += len;
            return true;
        }
        // What was read goes (nothing, if nothing was).
        self.received.drain(..self.read_at);
        self.read_at = 0;
        if self.received.capacity() == 0 {
            if let Some(spare) = spare.take() {
                self.received = spare;
            }
        }
        self.received.extend_from_slice(buffers.bytes(id, len));
        false
    }

    /// Copies held bytes into `buf`, from the lent buffers first (each
    /// given back once read), then from `received`. The bytes copied.
    pub(super) fn read_into(&mut self, buf: &mut [u8], buffers: &mut BufferRing) -> usize {
        let mut n = 0;
        while n < buf.len() {
            let Some(front) = self.lent.front_mut() else {
                break;
            };
            let (at, len) = (usize::from(front.at), usize::from(front.len));
            let take = len.min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&buffers.bytes(front.id, at + len)[at..at + take]);
            n += take;
            self.lent_bytes -= take;
            if take == len {
                buffers.give_back(front.id);
                self.lent.pop_front();
            } else {
                front.at += take as u16; // below len, at most SIZE
                front.len -= take as u16;
            }
        }
        let from_received = (self.received.len() - self.read_at).min(buf.len() - n);
        buf[n..n + from_received]
            .copy_from_slice(&self.received[self.read_at..self.read_at + from_received]);
        self.read_at += from_received;
        n + from_received
    }

    /// Copies what the lent buffers hold into `received`, ahead of what
    /// is there (into `spare` if that is an empty buffer of its own), and
    /// gives them back: the loop left the bytes unread, and the ring needs
    /// its buffers for the next wait. Asked only of a connection holding
    /// lent buffers.
    pub(super) fn spill(&mut self, buffers: &mut BufferRing, spare: Option<Vec<u8>>) {
        let mut all = spare.unwrap_or_default();
        for lent in self.lent.drain(..) {
            let (at, len) = (usize::from(lent.at), usize::from(lent.len));
            all.extend_from_slice(&buffers.bytes(lent.id, at + len)[at..]);
            buffers.give_back(lent.id);
        }
        all.extend_from_slice(&self.received[self.read_at..]);
        self.lent_bytes = 0;
        self.read_at = 0;
        self.received = all;
    }

    /// Gives back the lent buffers, unread: the connection is gone.
    pub(super) fn give_back_lent(&mut self, buffers: &mut BufferRing) {
        for lent in self.lent.drain(..) {
            buffers.give_back(lent.id);
        }
        self.lent_bytes = 0;
    }
}

/// Takes `buffer` (empty) out of a connection if it is large: a spare.
pub(super) fn take_if_large(buffer: &mut Vec<u8>) -> Option<Vec<u8>> {
    (buffer.capacity() > KEPT_CAPACITY).then(|| std::mem::take(buffer))
}

/// As [`take_if_large`], for a send's buffer.
pub(super) fn take_send_buffer_if_large(buffer: &mut VecDeque<u8>) -> Option<Vec<u8>> {
    (buffer.capacity() > KEPT_CAPACITY).then(|| Vec::from(std::mem::take(buffer)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registered connection for reading, holding `received` unread
    /// from `read_at` on.
    fn reading(received: Vec<u8>, read_at: usize) -> Slot {
        let mut slot = Slot::new(1);
        slot.interest = Some(Interest::READABLE);
        let io = slot.io();
        io.received = received;
        io.read_at = read_at;
        slot
    }

    #[test]
    fn what_a_connection_holds_is_what_it_has_not_read() {
        assert_eq!(reading(b"abcdef".to_vec(), 2).held(), 4);
        assert_eq!(Slot::new(1).held(), 0);
    }

    #[test]
    fn a_connection_holding_hold_bytes_asks_for_no_more() {
        assert!(reading(vec![0; HOLD - 1], 0).wants_receive());
        assert!(!reading(vec![0; HOLD], 0).wants_receive());
    }

    /// The error is reported once the bytes that came before it are read:
    /// with bytes held, the loop hears only that it may read.
    #[test]
    fn a_failed_connection_reports_its_error_after_its_bytes() {
        let mut holding = reading(b"before".to_vec(), 0);
        holding.fail(libc::ECONNRESET);
        let report = holding.readiness().unwrap();
        assert!(report.readable && report.read_closed && !report.error);
        let mut empty = reading(Vec::new(), 0);
        empty.fail(libc::ECONNRESET);
        assert!(empty.readiness().unwrap().error);
    }

    /// A buffer up to 16 KiB stays with its connection; a larger one is
    /// taken whole, leaving the connection none.
    #[test]
    fn only_a_large_buffer_leaves_its_connection() {
        let mut kept = Vec::with_capacity(KEPT_CAPACITY);
        assert!(take_if_large(&mut kept).is_none());
        assert_eq!(kept.capacity(), KEPT_CAPACITY);
        let mut large = Vec::with_capacity(KEPT_CAPACITY + 1);
        let taken = take_if_large(&mut large).unwrap();
        assert!(taken.capacity() > KEPT_CAPACITY);
        assert_eq!(large.capacity(), 0);

        let mut kept = VecDeque::from(vec![0; KEPT_CAPACITY]);
        kept.clear();
        assert_eq!(kept.capacity(), KEPT_CAPACITY);
        assert!(take_send_buffer_if_large(&mut kept).is_none());
        let mut large = VecDeque::with_capacity(4 * KEPT_CAPACITY);
        let taken = take_send_buffer_if_large(&mut large).unwrap();
        assert!(taken.capacity() >= 4 * KEPT_CAPACITY);
        assert_eq!(large.capacity(), 0);
        // A burst's buffer, well under the limit, is kept.
        let mut small = Vec::with_capacity(8 * 1024);
        assert!(take_if_large(&mut small).is_none());
    }
}
