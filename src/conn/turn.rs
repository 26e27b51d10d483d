//! What the loop asks of one connection in a turn, with the bookkeeping
//! that goes with it: the clocks the timeouts read, the per-turn read and
//! write accounting, the output watermarks and limit, the lists it is on.
//! The loop gets reports back and decides what follows (close, pause,
//! call the handler); it never sets these fields itself.

use std::any::Any;
use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read};
use std::net::Shutdown;

use super::buffer::BufferPool;
use super::conn::{Conn, FlushEnd, Pressure, QueuedFrame, ReadEnd, ReadLimits};
use super::table::ConnState;
use crate::codec::{Codec, DecodeError};
use crate::limits::Timeouts;
use crate::stream::Stream;
use crate::token::ConnId;
use crate::Interest;

/// The turn's deferred lists a connection can be on (at most once each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum List {
    /// Read again next turn without waiting for an event.
    Ready,
    /// Inbound messages to hand to the handler.
    Handle,
    /// Output to write.
    Flush,
}

/// What one read pass did.
#[derive(Debug)]
pub(crate) struct ReadReport {
    pub(crate) bytes: usize,
    pub(crate) end: ReadEnd,
    /// At least one whole message was queued.
    pub(crate) completed: bool,
    /// Its messages wait for room in its output (handling is paused).
    pub(crate) handling_paused: bool,
}

/// What one flush did.
#[derive(Debug)]
pub(crate) struct FlushReport {
    pub(crate) bytes: usize,
    pub(crate) end: FlushEnd,
    /// Back under the low watermark after being above the high one: the
    /// handler hears of it.
    pub(crate) relieved: bool,
    /// Messages held back for room in the output may be handled again.
    pub(crate) resume_handling: bool,
}

/// Output for a connection: bytes to copy, or a shared buffer to queue
/// as it is.
#[derive(Debug)]
pub(crate) enum Outgoing<'a> {
    Copies(&'a [&'a [u8]]),
    Shared(bytes::Bytes),
}

impl Outgoing<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Outgoing::Copies(parts) => parts.iter().map(|p| p.len()).sum(),
            Outgoing::Shared(bytes) => bytes.len(),
        }
    }
}

/// Output refused: the peer left this many bytes from earlier turns
/// unread, past `Config::max_output`.
#[derive(Debug)]
pub(crate) struct Backlog(pub(crate) usize);

/// How a lingering connection's discarding ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Discarded {
    /// The peer closed, reset, or sent more than it may: close now.
    Ended,
    /// Nothing more to read for now.
    Blocked,
    /// The per-event share was read: more next turn.
    Budget,
}

impl Conn {
    pub(crate) fn id(&self) -> ConnId {
        self.id
    }

    pub(crate) fn state(&self) -> ConnState {
        self.state
    }

    pub(crate) fn socket(&self) -> &Stream {
        &self.socket
    }

    /// Its socket, to be handed to io_uring's ring in place.
    #[cfg(target_os = "linux")]
    pub(crate) fn socket_mut(&mut self) -> &mut Stream {
        &mut self.socket
    }

    /// The listener's index, [`OUTBOUND`](super::OUTBOUND) or
    /// [`ADOPTED`](super::ADOPTED).
    pub(crate) fn origin(&self) -> u32 {
        self.origin
    }

    /// Starts the clocks and records the registration of a new connection.
    pub(crate) fn set_up(&mut self, interest: Interest, now_ms: u64, timeouts: Timeouts) {
        self.interest = Some(interest);
        self.last_progress_ms = now_ms;
        self.timeouts = timeouts;
    }

    // ----- lists -----

    /// Puts it on `list`: `true` if it was not on it (the caller pushes
    /// its id), `false` if it is already.
    pub(crate) fn list(&mut self, list: List) -> bool {
        let flag = self.flag(list);
        !std::mem::replace(flag, true)
    }

    pub(crate) fn is_listed(&self, list: List) -> bool {
        match list {
            List::Ready => self.listed.ready,
            List::Handle => self.listed.to_handle,
            List::Flush => self.listed.to_flush,
        }
    }

    /// Taken off `list` to be served.
    pub(crate) fn unlist(&mut self, list: List) {
        *self.flag(list) = false;
    }

    fn flag(&mut self, list: List) -> &mut bool {
        match list {
            List::Ready => &mut self.listed.ready,
            List::Handle => &mut self.listed.to_handle,
            List::Flush => &mut self.listed.to_flush,
        }
    }

    // ----- reading -----

    /// Whether this turn has read it already (from the ready list, or it
    /// waits there): one read budget per connection per turn.
    pub(crate) fn read_this_turn(&self, turn: u64) -> bool {
        self.listed.ready || self.last_read_turn == turn as u32
    }

    /// Reads what the socket has within `budget`, cuts messages into the
    /// inbound queue, and stamps the clocks: bytes moved (idle timeout),
    /// and when the message now arriving began (message deadline).
    #[allow(clippy::too_many_arguments)] // one call site, in the loop's read phase
    pub(crate) fn read_turn(
        &mut self,
        codec: &Codec,
        budget: usize,
        limits: ReadLimits,
        peer_closed: bool,
        pool: &mut BufferPool,
        turn: u64,
        now_ms: u64,
    ) -> ReadReport {
        self.last_read_turn = turn as u32; // wraps: compared for equality
        let queued_before = self.frames.len();
        let (bytes, end) = self.read_frames(codec, budget, limits, peer_closed, pool);
        let completed = self.frames.len() > queued_before;
        if bytes > 0 {
            self.last_progress_ms = now_ms;
        }
        // The message deadline runs from the first byte of a message.
        if !self.has_partial_message() {
            self.partial_since_ms = 0;
        } else if (completed && !self.decoder.is_discarding()) || self.partial_since_ms == 0 {
            self.partial_since_ms = now_ms;
        }
        ReadReport {
            bytes,
            end,
            completed,
            handling_paused: self.pressure == Pressure::HighHandlingPaused,
        }
    }

    /// Inbound messages waiting for the handler.
    pub(crate) fn queued_messages(&self) -> usize {
        self.frames.len()
    }

    /// The next message to hand to the handler, unless its output is past
    /// `high`: then handling pauses until the peer reads.
    pub(crate) fn next_message(&mut self, high: usize) -> Option<QueuedFrame> {
        if self.output_len() >= high && !self.frames.is_empty() {
            self.pressure = Pressure::HighHandlingPaused;
            return None;
        }
        self.frames.pop_front()
    }

    /// The item its decoder parsed from the message just taken with
    /// [`next_message`](Conn::next_message), as the handler's type `I`.
    /// Bytes alone (`I` is `()`) are always there: the item of another
    /// type, if the decoder made one, is dropped. `None` only if the
    /// decoder makes items of another type than `I`.
    pub(crate) fn take_item<I: 'static>(&mut self) -> Option<I> {
        if let Some(decoder) = self.decoder.0.as_mut() {
            if let Some(items) = decoder.items().downcast_mut::<VecDeque<I>>() {
                return items.pop_front();
            }
            decoder.skip_item();
        }
        // `I` is `()` here, or nothing can be made of it: `Some(())` seen
        // as an `Option<I>` gives it at no cost (no allocation, a ZST).
        let mut unit = Some(());
        (&mut unit as &mut dyn Any)
            .downcast_mut::<Option<I>>()
            .and_then(Option::take)
    }

    // ----- the handler's state -----

    /// Gives it the handler's state, returning what it had.
    pub(crate) fn put_state(&mut self, state: Box<dyn Any>) -> Option<Box<dyn Any>> {
        self.session.replace(Box::new(state)).map(|old| *old)
    }

    /// Takes the handler's state out (to lend it, or for good).
    pub(crate) fn take_state(&mut self) -> Option<Box<dyn Any>> {
        self.session.take().map(|state| *state)
    }

    /// Whether it holds state (set again while it was lent out).
    pub(crate) fn has_state(&self) -> bool {
        self.session.is_some()
    }

    /// Keeps why its input was refused until it closes for that reason.
    pub(crate) fn set_refusal(&mut self, error: Box<DecodeError>) {
        self.refusal = Some(error);
    }

    pub(crate) fn take_refusal(&mut self) -> Option<Box<DecodeError>> {
        self.refusal.take()
    }

    // ----- writing -----

    /// Takes it out of the backend's records (the caller deregisters the
    /// descriptor if this returns `Some`).
    pub(crate) fn take_interest(&mut self) -> Option<Interest> {
        self.interest.take()
    }

    /// Queues `out`, unless the peer has left more than `max_output`
    /// bytes of earlier turns' output unread. The limit is on that backlog,
    /// not on what this turn queues: one reply larger than the limit goes
    /// out whole, after the replies queued before it, while a peer that
    /// lets output from past turns pile up beyond the limit is cut off.
    /// A shared buffer's bytes count as any.
    pub(crate) fn queue_output(
        &mut self,
        out: Outgoing<'_>,
        pool: &mut BufferPool,
        turn: u32,
        max_output: usize,
        high: usize,
    ) -> Result<(), Backlog> {
        self.admit_output(out.len(), turn, max_output)?;
        match out {
            Outgoing::Copies(parts) => self.queue(parts, pool),
            Outgoing::Shared(bytes) => self.queue_shared(bytes),
        }
        if self.output_len() > high && self.pressure == Pressure::Normal {
            self.pressure = Pressure::High;
        }
        Ok(())
    }

    /// Refuses output while the backlog of earlier turns is past
    /// `max_output`; otherwise counts `adding` as this turn's.
    fn admit_output(&mut self, adding: usize, turn: u32, max_output: usize) -> Result<(), Backlog> {
        if self.queued_turn != turn {
            self.queued_turn = turn;
            self.queued_this_turn = 0;
        }
        let backlog = self.output_len().saturating_sub(self.queued_this_turn);
        if backlog > max_output {
            return Err(Backlog(backlog));
        }
        self.queued_this_turn += adding;
        Ok(())
    }

    /// Writes up to `budget` bytes of its output, stamps the idle clock if
    /// any moved, and reports whether the output fell back under `low`.
    pub(crate) fn flush_turn(
        &mut self,
        pool: &mut BufferPool,
        budget: usize,
        low: usize,
        now_ms: u64,
    ) -> FlushReport {
        let (bytes, end) = self.flush(pool, budget);
        if bytes > 0 {
            // The peer is reading: a long download is not idle.
            self.wrote_any = true;
            self.last_progress_ms = now_ms;
        }
        let relieved = self.pressure != Pressure::Normal && self.output_len() <= low;
        let resume_handling = relieved && self.pressure == Pressure::HighHandlingPaused;
        if relieved {
            self.pressure = Pressure::Normal;
        }
        FlushReport {
            bytes,
            end,
            relieved,
            resume_handling,
        }
    }

    /// Whether anything was ever written to the peer: only then can a
    /// reset at close cost it an answer.
    pub(crate) fn wrote_any(&self) -> bool {
        self.wrote_any
    }

    // ----- registration -----

    /// What the backend watches it for now (`None`: not registered).
    pub(crate) fn interest(&self) -> Option<Interest> {
        self.interest
    }

    pub(crate) fn set_interest(&mut self, interest: Option<Interest>) {
        self.interest = interest;
    }

    // ----- timeouts -----

    /// Changes its timeouts; returns them as they now are.
    pub(crate) fn change_timeouts(&mut self, change: impl FnOnce(&mut Timeouts)) -> Timeouts {
        change(&mut self.timeouts);
        self.timeouts
    }

    // ----- lingering close -----

    /// Shuts its sending side: FIN after the data already written.
    pub(crate) fn shut_write(&self) {
        let _ = self.socket.shutdown(Shutdown::Write);
    }

    /// Reads and throws away what a lingering peer still sends: at most
    /// `per_event` bytes now, `at_most` in all.
    pub(crate) fn discard_incoming(&mut self, per_event: usize, at_most: usize) -> Discarded {
        let mut scratch = [0u8; 16 * 1024];
        let mut discarded = 0;
        loop {
            if self.discarded as usize >= at_most {
                return Discarded::Ended;
            }
            if discarded >= per_event {
                return Discarded::Budget;
            }
            match self.socket.read(&mut scratch) {
                Ok(0) => return Discarded::Ended,
                Ok(n) => {
                    discarded += n;
                    self.discarded = self.discarded.saturating_add(n as u32);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Discarded::Blocked,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Discarded::Ended, // a reset: the peer is gone too
            }
        }
    }

    /// The socket's pending error, if an error event came.
    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.socket.take_error()
    }
}
