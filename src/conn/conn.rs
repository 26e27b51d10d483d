//! One connection: its socket, inbound queue, outbound buffer and interest.
//!
//! This is the Python server's per-socket state gathered in one place: its
//! membership of `inputs` and `outputs` (its [`ConnState`], changed only by
//! the connection table) and its entry in the `message` dict (`frames`, the
//! inbound queue). The reactor decides *when* to read, handle and write;
//! this module knows *how*.

use std::any::Any;
use std::collections::VecDeque;
use std::io::{self, Read};

use super::buffer::BufferPool;
use super::decode::{checked, OwnDecoder};
use super::output::Output;
use super::state::{Lifecycle, Reading};
use super::table::{ConnState, Listed};
use crate::codec::{AnyDecoder, Codec, DecodeError, Frame};
use crate::limits::Timeouts;
use crate::stream::Stream;
use crate::token::ConnId;
use crate::Interest;

/// A decoded message not yet handled: its bytes are `inbuf[start..end]`.
/// Offsets are `usize`: the inbound limits and the codec maximum may be
/// set past 4 GiB, and a narrower offset would wrap.
#[derive(Clone, Copy, Debug)]
pub(crate) struct QueuedFrame {
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// Where the next message starts (header and delimiter skipped).
    pub(crate) next: usize,
    /// `false`: bytes the decoder discarded, released when their turn
    /// comes and handed to no hook.
    pub(crate) message: bool,
}

/// Where a connection's output stands against the watermarks
/// ([`Config::output_watermarks`](crate::Config::output_watermarks)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pressure {
    /// Under the high watermark, or back under the low one.
    Normal,
    /// Went above the high watermark: the handler hears
    /// ([`Handler::on_drained`](crate::Handler::on_drained)) once it drains
    /// below the low one.
    High,
    /// Above it with messages waiting: they stay unhandled until it drains.
    HighHandlingPaused,
}

/// How one read pass ended.
#[derive(Debug)]
pub(crate) enum ReadEnd {
    /// The socket has nothing more for now (`WouldBlock`, or a short read).
    Drained,
    /// The per-turn byte budget ran out with bytes possibly still waiting.
    BudgetSpent,
    /// The peer closed its sending side (a read returned 0).
    EndOfInput,
    /// The inbound queue reached its limit; reading stops until it drains.
    QueueFull,
    /// The decoder refused the bytes, or a message passed the maximum
    /// length: nothing more is read.
    Refused(DecodeError),
    /// The read failed.
    Failed(io::Error),
}

/// How one flush ended.
#[derive(Debug)]
pub(crate) enum FlushEnd {
    /// Everything queued was written.
    Empty,
    /// The socket's send buffer is full: wait for WRITABLE.
    Blocked,
    /// The write failed.
    Failed(io::Error),
    /// The per-turn write budget was spent with output left: flush again
    /// next turn.
    BudgetSpent,
}

#[derive(Debug)]
pub(crate) struct Conn {
    pub(super) socket: Stream,
    pub(super) id: ConnId,
    /// The listener that accepted it, or [`OUTBOUND`] for `connect`.
    pub(super) origin: u32,
    /// Lifecycle, reading and writing: changed only by the connection table.
    pub(super) state: ConnState,
    /// Which of the turn's deferred lists it is on.
    pub(super) listed: Listed,
    pub(super) pressure: Pressure,
    /// Read buffer; its length is the part initialised (reads go there
    /// without zeroing it again), `[..filled]` holds data.
    pub(super) inbuf: Vec<u8>,
    pub(super) filled: usize,
    /// Bytes at the front of `inbuf` already cut into `frames`.
    pub(super) framed: usize,
    /// Bytes past `framed` already searched for a delimiter.
    pub(super) scanned: usize,
    /// The connection's own decoder, if the framing is not a built-in codec.
    pub(super) decoder: OwnDecoder,
    /// The inbound queue: decoded messages waiting for the handler, in order.
    pub(super) frames: VecDeque<QueuedFrame>,
    /// Bytes waiting to be written: copies in a ring, and shared buffers.
    pub(super) output: Output,
    /// What the backend watches this socket for (`None`: not registered).
    pub(super) interest: Option<Interest>,
    /// When bytes last moved, in either direction (or the connection was
    /// set up), in the reactor's milliseconds: the idle timeout counts from
    /// here, as Redis's `lastinteraction`.
    pub(super) last_progress_ms: u64,
    /// Its idle timeout and message deadline: the configured ones, or what
    /// the handler set for this connection.
    pub(super) timeouts: Timeouts,
    /// Output queued during the turn `queued_turn`: what the loop has not
    /// yet tried to write, so no part of the backlog the output limit
    /// measures.
    pub(super) queued_this_turn: usize,
    /// The turn's number, cut to 32 bits (compared for equality only).
    pub(super) queued_turn: u32,
    /// The loop turn (`Stats::turns`) that last read this socket: one read
    /// per turn, whichever way the turn came to it.
    /// (Cut to 32 bits: compared for equality only.)
    pub(super) last_read_turn: u32,
    /// Whether anything was ever written to the peer: only then can a
    /// reset at close cost it an answer (see `linger.rs`).
    pub(super) wrote_any: bool,
    /// Bytes read and thrown away during a lingering close (at most about
    /// a megabyte: 32 bits keep the slot small).
    pub(super) discarded: u32,
    /// Why its bytes were refused, kept until it closes for that reason.
    pub(super) refusal: Option<Box<DecodeError>>,
    /// When the bytes of the message now arriving started (0: none pending).
    pub(super) partial_since_ms: u64,
    /// The handler's own state for this connection
    /// ([`Context::set_state`](crate::Context::set_state)): dropped with
    /// the connection. Boxed twice so that the slot holds a thin pointer
    /// (8 bytes, not 16): most connections of most servers hold none.
    pub(super) session: Option<Box<Box<dyn Any>>>,
}

/// Which timeout a connection ran past.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expired {
    /// No byte moved either way for its idle timeout.
    Idle,
    /// A message begun and not finished within its message deadline.
    Message,
}

/// [`Conn::origin`] of a connection the reactor opened itself.
pub(crate) const OUTBOUND: u32 = u32::MAX;

/// [`Conn::origin`] of a connection handed over by
/// [`Handle::adopt`](crate::Handle::adopt).
pub(crate) const ADOPTED: u32 = u32::MAX - 1;

/// How a connection reads, from the configuration: the inbound queue's
/// limits, the size of a fresh read buffer, and the framing's bounds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadLimits {
    pub(crate) messages: usize,
    pub(crate) bytes: usize,
    /// The longest message: bytes left unframed past it are refused.
    pub(crate) max_message: usize,
    /// [`Config::read_buffer_size`](crate::Config::read_buffer_size): the
    /// size of a fresh buffer, and the least free space a read is given.
    pub(crate) min_read: usize,
}

impl Conn {
    pub(crate) fn new(
        socket: Stream,
        id: ConnId,
        origin: u32,
        state: ConnState,
        decoder: Option<Box<dyn AnyDecoder>>,
    ) -> Conn {
        Conn {
            socket,
            id,
            origin,
            state,
            listed: Listed::default(),
            pressure: Pressure::Normal,
            inbuf: Vec::new(),
            filled: 0,
            framed: 0,
            scanned: 0,
            decoder: OwnDecoder(decoder),
            frames: VecDeque::new(),
            output: Output::default(),
            interest: None,
            last_progress_ms: 0,
            timeouts: Timeouts::default(),
            queued_this_turn: 0,
            queued_turn: 0,
            last_read_turn: 0,
            wrote_any: false,
            discarded: 0,
            partial_since_ms: 0,
            refusal: None,
            session: None,
        }
    }

    /// Whether the inbound queue has reached its limits.
    pub(crate) fn queue_full(&self, limits: &ReadLimits) -> bool {
        self.frames.len() >= limits.messages || self.framed >= limits.bytes
    }

    /// Which of its timeouts this connection is past at `now_ms`, if any:
    /// strictly more than the limit in whole milliseconds, never early.
    pub(crate) fn expired(&self, now_ms: u64) -> Option<Expired> {
        let over = |since: u64, limit_ms: u32| {
            limit_ms > 0 && since != 0 && now_ms.saturating_sub(since) > u64::from(limit_ms)
        };
        if over(self.last_progress_ms, self.timeouts.idle_ms) {
            Some(Expired::Idle)
        } else if over(self.partial_since_ms, self.timeouts.message_ms) {
            Some(Expired::Message)
        } else {
            None
        }
    }

    /// Whether bytes of an incomplete message are buffered, or the bytes
    /// of a discarded one are still to come (the message deadline holds
    /// for those too: a refused value must not trickle in for ever).
    pub(crate) fn has_partial_message(&self) -> bool {
        self.filled > self.framed || self.decoder.is_discarding()
    }

    pub(crate) fn is_open(&self) -> bool {
        self.state.is_open()
    }

    /// Whether more bytes may still arrive and be read.
    fn may_read_more(&self) -> bool {
        self.is_open()
            && !matches!(
                self.state.reading(),
                Reading::Ended | Reading::Refused | Reading::Stopped
            )
    }

    /// Reads until the socket is drained or `budget` bytes were read, cutting
    /// what arrives into frames. Returns the bytes read and how it ended.
    ///
    /// `peer_closed` says the event carried end-of-input: then a short read
    /// does not mean "drained", because the 0-byte read that reports the end
    /// will not come with an edge of its own.
    pub(crate) fn read_frames(
        &mut self,
        codec: &Codec,
        budget: usize,
        limits: ReadLimits,
        peer_closed: bool,
        pool: &mut BufferPool,
    ) -> (usize, ReadEnd) {
        let mut total = 0;
        loop {
            if self.queue_full(&limits) {
                return (total, ReadEnd::QueueFull);
            }
            if total >= budget {
                return (total, ReadEnd::BudgetSpent);
            }
            let want = self.make_room(budget - total, &limits, pool);
            let spare = &mut self.inbuf[self.filled..self.filled + want];
            match self.socket.read(spare) {
                Ok(0) => {
                    if let Err(e) = self.frame_rest_at_end(codec, &limits) {
                        return (total, ReadEnd::Refused(e));
                    }
                    return (total, ReadEnd::EndOfInput);
                }
                Ok(n) => {
                    self.filled += n;
                    total += n;
                    if let Err(e) = self.cut_frames(codec, &limits) {
                        return (total, ReadEnd::Refused(e));
                    }
                    if n < want && !peer_closed {
                        // The receive queue is empty: the kernel reports the
                        // next arrival with a new edge, so a second read now
                        // would only return WouldBlock.
                        return (total, ReadEnd::Drained);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Nothing came (the bytes that made the event were read
                    // last turn): a buffer taken for this read goes back, or
                    // an idle connection would hold it until it speaks.
                    self.release_if_empty(pool);
                    return (total, ReadEnd::Drained);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return (total, ReadEnd::Failed(e)),
            }
        }
    }

    /// Ensures free space at the end of `inbuf` and says how much to read.
    pub(super) fn make_room(
        &mut self,
        budget_left: usize,
        limits: &ReadLimits,
        pool: &mut BufferPool,
    ) -> usize {
        if self.inbuf.capacity() == 0 {
            (self.inbuf, self.frames) = pool.take_inbound();
        }
        let min_read = limits.min_read;
        if self.inbuf.len() - self.filled < min_read {
            // Initialise more of the buffer, doubling what is there: a fresh
            // buffer costs the zeroing of `min_read` bytes (1 KiB by
            // default), not of its whole capacity, and one that carried a
            // big stream keeps its size in the pool. Grow rather than
            // compact: the frames before `framed` still wait for the
            // handler. The codec maximum bounds a partial frame, and the
            // read budget and inbound limits bound the rest.
            let grow = self.inbuf.len().max(min_read);
            self.inbuf.resize(self.inbuf.len() + grow, 0);
        }
        (self.inbuf.len() - self.filled).min(budget_left.max(1))
    }

    /// Cuts what is buffered into frames: the built-in codec (static
    /// dispatch, the hot path) or the connection's own decoder.
    fn cut_frames(&mut self, codec: &Codec, limits: &ReadLimits) -> Result<(), DecodeError> {
        loop {
            let buf = &self.inbuf[self.framed..self.filled];
            let found = match &mut self.decoder.0 {
                None => codec.decode_from(buf, &mut self.scanned)?,
                Some(decoder) => checked(decoder.decode(buf)?, buf.len(), limits.max_message)?,
            };
            match found {
                Some(frame) => self.push_frame(frame),
                None => return Ok(()),
            }
        }
    }

    /// The peer ended its output: what is left may still be a message (a
    /// last line without its `\n`; whatever a decoder makes of it).
    fn frame_rest_at_end(&mut self, codec: &Codec, limits: &ReadLimits) -> Result<(), DecodeError> {
        let buf = &self.inbuf[self.framed..self.filled];
        let found = match &mut self.decoder.0 {
            None => codec.decode_at_end(buf),
            Some(decoder) => checked(decoder.decode_eof(buf)?, buf.len(), limits.max_message)?,
        };
        if let Some(frame) = found {
            self.push_frame(frame);
        }
        Ok(())
    }

    /// Queues a frame the rules let through: a message, or bytes to drop
    /// when their turn comes (a discard).
    pub(super) fn push_frame(&mut self, frame: Frame) {
        let base = self.framed;
        let payload = frame.payload();
        self.frames.push_back(QueuedFrame {
            start: base + payload.start,
            end: base + payload.end,
            next: base + frame.consumed(),
            message: !frame.is_discard(),
        });
        self.framed += frame.consumed();
        self.scanned = 0;
    }

    /// Lends the read buffer out for handling (the handler may touch other
    /// connections, so the bytes cannot stay borrowed from this one).
    pub(crate) fn take_inbuf(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.inbuf)
    }

    /// Takes the buffer back after handling; `consumed` bytes at its front
    /// were handled. Drops what is left of the input if the connection no
    /// longer reads, and returns a drained buffer to the pool.
    pub(crate) fn restore_inbuf(
        &mut self,
        mut buf: Vec<u8>,
        consumed: usize,
        pool: &mut BufferPool,
    ) {
        // A closing connection handles nothing more: its input is gone.
        if !self.is_open() {
            self.filled = 0;
            self.framed = 0;
            self.scanned = 0;
            pool.give_inbound(buf, std::mem::take(&mut self.frames));
            return;
        }
        // Past the end of input (or a refusal), bytes after the last whole
        // message can never complete one; the messages themselves still
        // wait for room in the output, and are answered.
        if !self.may_read_more() {
            self.filled = self.framed;
        }
        if consumed > 0 {
            buf.copy_within(consumed..self.filled, 0);
            self.filled -= consumed;
            self.framed -= consumed;
            for frame in &mut self.frames {
                frame.start -= consumed;
                frame.end -= consumed;
                frame.next -= consumed;
            }
        }
        if self.filled == 0 {
            self.scanned = 0;
            pool.give_inbound(buf, std::mem::take(&mut self.frames));
        } else {
            self.inbuf = buf;
        }
    }

    /// Gives the read buffer (and its message queue) back to the pool if
    /// it holds nothing. (The pool ignores an empty placeholder.)
    fn release_if_empty(&mut self, pool: &mut BufferPool) {
        if self.filled == 0 {
            self.scanned = 0;
            pool.give_inbound(
                std::mem::take(&mut self.inbuf),
                std::mem::take(&mut self.frames),
            );
        }
    }

    /// Forgets unhandled input (the connection is closing).
    pub(crate) fn discard_input(&mut self, pool: &mut BufferPool) {
        self.filled = 0;
        self.framed = 0;
        self.release_if_empty(pool);
    }

    /// Queues bytes for the peer.
    pub(crate) fn queue(&mut self, parts: &[&[u8]], pool: &mut BufferPool) {
        self.output.push_copies(parts, pool);
    }

    pub(crate) fn queue_shared(&mut self, bytes: bytes::Bytes) {
        self.output.push_shared(bytes);
    }

    /// Whether output is still to go: queued here, or taken by a ring
    /// that has not sent it yet (io_uring's completion driver).
    pub(crate) fn has_output(&self) -> bool {
        !self.output.is_empty() || self.socket.sending()
    }

    pub(crate) fn output_len(&self) -> usize {
        self.output.len()
    }

    /// Writes queued bytes until none are left or the socket would block.
    /// Returns the bytes written and how it ended.
    pub(crate) fn flush(&mut self, pool: &mut BufferPool, budget: usize) -> (usize, FlushEnd) {
        let mut total = 0;
        while !self.output.is_empty() {
            let allowed = budget - total;
            if allowed == 0 {
                // Written enough for one turn: the rest goes next turn,
                // after the other connections have had theirs.
                return (total, FlushEnd::BudgetSpent);
            }
            // A socket that sends from buffers it owns takes the output's
            // buffer itself rather than a copy of its bytes.
            let socket = &mut self.socket;
            let handed = self
                .output
                .hand_over(allowed, |bytes| socket.write_whole(bytes));
            if handed > 0 {
                total += handed;
                continue;
            }
            match self.output.write_to(&mut self.socket, allowed) {
                Ok(0) => {
                    return (
                        total,
                        FlushEnd::Failed(io::Error::new(
                            io::ErrorKind::WriteZero,
                            "socket accepted no bytes",
                        )),
                    )
                }
                Ok(n) => {
                    self.output.consume(n);
                    total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return (total, FlushEnd::Blocked)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return (total, FlushEnd::Failed(e)),
            }
        }
        self.output.release(pool);
        // Asked only while closing: `sending` looks into the ring's table,
        // and this runs after every message.
        if matches!(self.state.lifecycle(), Lifecycle::Closing(_)) && self.socket.sending() {
            // A ring took the bytes but has not sent them: a connection
            // closing in order waits for them, as for its own output, and
            // hears WRITABLE when they are out.
            return (total, FlushEnd::Blocked);
        }
        (total, FlushEnd::Empty)
    }

    /// Forgets unwritten output (the connection is closing at once).
    pub(crate) fn discard_output(&mut self, pool: &mut BufferPool) {
        self.output.release(pool);
    }

    /// The interest this connection should be registered with now.
    pub(crate) fn wanted_interest(&self) -> Option<Interest> {
        if self.state.is_connecting() {
            // Completion (or failure) of a connect is reported as writable.
            return Some(Interest::WRITABLE);
        }
        // A lingering connection is read only to discard, until its peer
        // closes.
        let reading = self.state.reading().is_active() || self.state.is_lingering();
        let writing = self.state.writing().is_awaiting_writable();
        match (reading, writing) {
            (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            (false, false) => None,
        }
    }

    /// Heap bytes held by this connection's buffers (its slab slot aside).
    #[cfg(all(test, unix))]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.inbuf.capacity()
            + self.output.capacity()
            + self.frames.capacity() * std::mem::size_of::<QueuedFrame>()
    }
}
