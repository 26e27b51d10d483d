//! Connection I/O, the hot path: phases 3 and 5 (route an event, read),
//! 6 (hand inbound messages to the handler) and 7 (flush), and keeping each
//! socket's registered interest in line with its state.

use crate::backend::Readiness;
use crate::close::CloseReason;
use crate::codec::DecodeError;
use crate::conn::{Farewell, Lifecycle, ReadEvent, Reading, WriteEvent};
use crate::conn::{FlushEnd, FlushReport, List, ReadEnd, ReadReport};
use crate::handler::Handler;
use crate::limits::{Limit, Timeouts};
use crate::reactor::Core;
use crate::stream::Stream;
use crate::token::{self, ConnId, TokenKind};
use crate::Interest;

impl Core {
    /// Puts a socket in the table under a fresh generation and registers it:
    /// READABLE for an open connection, WRITABLE for one still connecting.
    /// Registration comes first, so a failure leaves nothing behind.
    pub(crate) fn insert_conn(
        &mut self,
        stream: Stream,
        origin: u32,
        connecting: bool,
    ) -> std::io::Result<ConnId> {
        let interest = if connecting {
            Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        // With io_uring, the ring moves an accepted or adopted
        // connection's bytes; one the loop opens itself (connecting) is
        // on a poll, which reports the connect's completion, until then
        // (`finish_connect` hands it to the ring).
        let stream = match &self.streams {
            Some(streams) if !connecting => stream
                .served_by(streams)
                .inspect_err(|e| warn!("a connection dropped: cannot hand it to io_uring: {e}"))?,
            _ => stream,
        };
        let backend = &mut self.backend;
        // A decoder of its own, if the framing is not a built-in codec.
        let decoder = self.config.custom_framing.as_ref().map(|c| (c.make)());
        let id = self
            .conns
            .insert(stream, origin, connecting, decoder, |stream, id| {
                backend
                    .add(stream.raw_source(), id.token(), interest)
                    .inspect_err(|e| {
                        warn!("{} dropped: cannot register it: {e}", stream.peer_name())
                    })
            })
            .inspect_err(|_| self.stats.unwatchable += 1)?;
        let now_ms = self.now_ms;
        let timeouts = Timeouts::new(self.config.idle_timeout, self.config.message_deadline);
        if let Some(conn) = self.conns.get_mut(id) {
            trace!("{id} set up ({})", conn.socket().peer_name());
            conn.set_up(interest, now_ms, timeouts);
        }
        Ok(id)
    }

    // ----- phases 3 to 5 -----

    /// Serves the sockets left on the ready list by the last turn.
    pub(crate) fn serve_ready_list<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
    ) {
        let mut ready = self.ready.take();
        for token in ready.drain(..) {
            match token::decode(token) {
                TokenKind::Conn(id) => match self.conns.get_mut(id) {
                    Some(conn) => conn.unlist(List::Ready),
                    // Closed since it was listed: simply dropped from the
                    // list, which is not a stale event from the kernel.
                    None => continue,
                },
                TokenKind::Listener(listener) => self.listeners.unlist(listener),
                TokenKind::Source(source) => {
                    // A datagram socket that spent its budget, or a source
                    // whose hook asked to be served again: as if readable.
                    if self.sources.unlist(source) {
                        self.on_source(handler, source, Readiness::readable(token));
                    }
                    continue;
                }
                TokenKind::Waker => continue,
            }
            self.on_event(handler, Readiness::readable(token));
        }
        self.ready.give_back(ready);
    }

    /// Phase 3: routes one event by its token.
    pub(crate) fn on_event<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
        event: Readiness,
    ) {
        match token::decode(event.token) {
            TokenKind::Listener(listener) => {
                if event.readable {
                    self.accept(handler, listener);
                }
            }
            TokenKind::Source(source) => self.on_source(handler, source, event),
            TokenKind::Waker => self.drain_commands(handler),
            TokenKind::Conn(id) => self.on_conn_event(handler, id, event),
        }
    }

    fn on_conn_event<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
        id: ConnId,
        event: Readiness,
    ) {
        let Some(conn) = self.conns.get_mut(id) else {
            // The connection closed earlier (maybe this very turn) and its
            // slot may already serve another: never act on it.
            self.stats.stale_events += 1;
            trace!("stale event for {id} ignored");
            return;
        };
        let state = conn.state();
        if state.is_connecting() {
            self.finish_connect(handler, id);
            return;
        }
        if state.is_lingering() {
            if event.readable || event.read_closed || event.error {
                self.discard_lingering_input(id);
                self.run_close_hooks(handler);
            }
            return;
        }
        if event.error {
            if let Ok(Some(error)) | Err(error) = conn.take_error() {
                self.close(id, CloseReason::from_io(error));
                self.run_close_hooks(handler);
                return;
            }
        }
        // A connection gets one budget per turn. One that spent it is
        // already listed to be read next turn, and one the ready list served
        // this turn has had its read: its event (which a level-triggered
        // backend repeats as long as bytes wait) must not give it a second.
        // Skipping is safe on an edge-triggered backend too: that read
        // ended at WouldBlock (new bytes make a new edge), or at the budget
        // or a full queue (which list it again). Only the news that the
        // peer closed is not left for later.
        let read_already = conn.read_this_turn(self.stats.turns);
        if (event.readable || event.read_closed)
            && state.reading().is_active()
            && (event.read_closed || !read_already)
        {
            self.read(id, event.read_closed);
        }
        if let Some(conn) = self.conns.get(id) {
            if (event.writable || event.write_closed)
                && conn.state().writing().is_awaiting_writable()
            {
                self.queue_flush(id);
            }
        }
        self.run_close_hooks(handler);
    }

    /// Phase 5: read what the socket has, within the byte budget and the
    /// inbound queue's limits.
    fn read(&mut self, id: ConnId, peer_closed: bool) {
        let budget = self.config.read_budget;
        let codec = self.config.codec;
        let limits = self.read_limits;
        let (turn, now_ms) = (self.stats.turns, self.now_ms);
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let ReadReport {
            bytes,
            end,
            completed,
            handling_paused,
        } = conn.read_turn(
            &codec,
            budget,
            limits,
            peer_closed,
            &mut self.pool,
            turn,
            now_ms,
        );
        self.stats.bytes_read += bytes as u64;
        match end {
            ReadEnd::Drained => {}
            ReadEnd::BudgetSpent => {
                self.stats.budget_exhausted += 1;
                self.put_on_ready_list(id);
            }
            // Nothing drains the queue until the peer reads our output.
            ReadEnd::QueueFull if handling_paused => self.pause_reading(id),
            // Handling this turn drains it; read on next turn.
            ReadEnd::QueueFull => self.put_on_ready_list(id),
            ReadEnd::EndOfInput => {
                // Half-close: the peer sends nothing more but may still read.
                // Answer what it sent, then close (phase 6 decides when).
                self.conns.read_event(id, ReadEvent::InputEnded);
                // No more READABLE: a level-triggered backend would report
                // the end of input on every poll until the connection closes.
                self.update_interest(id);
                self.queue_handling(id);
            }
            ReadEnd::Refused(e) => self.refuse_input(id, e),
            ReadEnd::Failed(e) => {
                self.close(id, CloseReason::from_io(e));
                return;
            }
        }
        if completed {
            self.queue_handling(id);
        }
    }

    /// The decoder refused the bytes (or a message passed the maximum):
    /// nothing more is read, and once the messages before them are
    /// answered, the handler hears of it and the connection closes.
    fn refuse_input(&mut self, id: ConnId, error: DecodeError) {
        if let DecodeError::TooLong(e) = &error {
            let (len, max) = (e.len, e.max);
            self.limit_hit(
                Limit::FrameTooLong,
                format_args!("{id} sent a message of {len} bytes, over {max}"),
            );
        }
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        conn.set_refusal(Box::new(error));
        self.conns.read_event(id, ReadEvent::InputRefused);
        self.update_interest(id);
        self.queue_handling(id);
    }

    pub(crate) fn put_on_ready_list(&mut self, id: ConnId) {
        if self.conns.get_mut(id).is_some_and(|c| c.list(List::Ready)) {
            self.ready.push(id.token());
        }
    }

    pub(crate) fn queue_handling(&mut self, id: ConnId) {
        if self.conns.get_mut(id).is_some_and(|c| c.list(List::Handle)) {
            self.to_handle.push(id);
        }
    }

    pub(crate) fn queue_flush(&mut self, id: ConnId) {
        if self.conns.get_mut(id).is_some_and(|c| c.list(List::Flush)) {
            self.to_flush.push(id);
        }
    }

    /// Takes the connection out of `inputs` until its inbound queue drains.
    fn pause_reading(&mut self, id: ConnId) {
        if self.conns.read_event(id, ReadEvent::QueueFilled) != Some(Reading::QueueFull) {
            return;
        }
        let Some(conn) = self.conns.get(id) else {
            return;
        };
        let (queued, bytes) = (conn.queued_messages(), conn.output_len());
        self.stats.read_pauses += 1;
        self.update_interest(id);
        self.limit_hit(
            Limit::InboundQueue,
            format_args!(
                "{id} has {queued} messages waiting and {bytes} bytes of output; reading paused"
            ),
        );
    }

    /// Applies a reading change; if it made the connection read again, bytes
    /// may be waiting with no edge to come for them: read them next turn.
    fn change_reading(&mut self, id: ConnId, event: ReadEvent) -> bool {
        let Some(after) = self.conns.read_event(id, event) else {
            return false;
        };
        self.update_interest(id);
        if after.is_active() {
            self.put_on_ready_list(id);
        }
        true
    }

    pub(crate) fn pause_reading_by_handler(&mut self, id: ConnId) -> bool {
        self.change_reading(id, ReadEvent::HandlerPause)
    }

    pub(crate) fn resume_reading_by_handler(&mut self, id: ConnId) -> bool {
        self.change_reading(id, ReadEvent::HandlerResume)
    }

    // ----- phase 6 -----

    /// Hands each queued message to the handler, oldest first (the seed's
    /// `message[w].pop()` takes the newest), while the connection's output
    /// stays under the high watermark.
    pub(crate) fn handle_inbound<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
    ) {
        let high = self.config.output_high_watermark;
        let mut batch = self.to_handle.take();
        for id in batch.drain(..) {
            let Some(conn) = self.conns.get_mut(id) else {
                continue;
            };
            conn.unlist(List::Handle);
            // The handler may send to any connection, this one included, so
            // the message bytes are lent out of the connection meanwhile.
            let buf = conn.take_inbuf();
            let mut consumed = 0;
            // Stop as soon as the connection closes or starts closing (what it
            // sent after that is not answered), or its output passes the
            // high watermark (the rest waits until the peer reads).
            while let Some((frame, item)) =
                self.conns
                    .get_mut(id)
                    .filter(|c| c.is_open())
                    .and_then(|c| {
                        // The item comes out with its frame: one lookup a message.
                        let frame = c.next_message(high)?;
                        Some((frame, frame.message.then(|| c.take_item::<I>()).flatten()))
                    })
            {
                consumed = frame.next;
                if !frame.message {
                    continue; // discarded bytes: released, heard by no hook
                }
                let Some(item) = item else {
                    // `run_once` checked that the decoder makes `I`, or
                    // that `I` is bytes alone: never reached.
                    debug_assert!(false, "a message without its item");
                    continue;
                };
                self.stats.messages += 1;
                let msg = &buf[frame.start..frame.end];
                let handled = self.call_hook(handler, "on_message", |h, cx| {
                    h.on_item(cx, id, item, msg);
                });
                if !handled {
                    self.close(id, CloseReason::HandlerPanic);
                }
                self.run_close_hooks(handler);
            }
            match self.conns.get_even_closed_mut(id) {
                Some(conn) => conn.restore_inbuf(buf, consumed, &mut self.pool),
                None => self.pool.give_inbound(buf, Default::default()),
            }
            self.after_handling(handler, id);
        }
        self.to_handle.give_back(batch);
    }

    /// Decides what a connection does next once its queue was served: close
    /// after its input ended, or pause or resume reading.
    fn after_handling<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
        id: ConnId,
    ) {
        let limits = self.read_limits;
        let Some(conn) = self.conns.get(id).filter(|c| c.is_open()) else {
            return;
        };
        let reading = conn.state().reading();
        let waiting = conn.queued_messages();
        if matches!(reading, Reading::Ended | Reading::Refused) {
            if waiting > 0 {
                return; // still waiting for room in the output
            }
            let farewell = if reading == Reading::Refused {
                self.tell_refusal(handler, id);
                Farewell::Refused
            } else {
                Farewell::PeerClosed
            };
            self.close_once_written(id, farewell);
        } else if reading.is_active() && conn.queue_full(&limits) {
            self.pause_reading(id);
        } else if reading.is_queue_full() && waiting == 0 {
            self.change_reading(id, ReadEvent::QueueDrained);
        }
    }

    // ----- phase 7 -----

    /// Lists for this turn's flush the connections that spent their write
    /// budget last turn.
    pub(crate) fn carry_over_flushes(&mut self) {
        let mut next = self.flush_next.take();
        for id in next.drain(..) {
            self.to_flush.push(id);
        }
        self.flush_next.give_back(next);
    }

    /// Writes queued output right away; only a write that would block puts
    /// the connection in the writable set (and costs an `epoll_ctl`).
    pub(crate) fn flush<I: 'static, H: Handler<I> + ?Sized + 'static>(&mut self, handler: &mut H) {
        let low = self.config.output_low_watermark;
        let budget = self.config.write_budget;
        let mut drained = Vec::new();
        let mut batch = self.to_flush.take();
        for id in batch.drain(..) {
            let Some(conn) = self.conns.get_mut(id) else {
                continue;
            };
            conn.unlist(List::Flush);
            if conn.state().is_connecting() {
                continue; // flushed once the connect completes
            }
            let FlushReport {
                bytes,
                end,
                relieved,
                resume_handling,
            } = conn.flush_turn(&mut self.pool, budget, low, self.now_ms);
            self.stats.bytes_written += bytes as u64;
            // Back under the low watermark: the handler hears of it, and
            // messages held back for room in the output are handled again.
            if relieved {
                drained.push(id);
            }
            match end {
                FlushEnd::Empty => self.flushed_all(id),
                FlushEnd::BudgetSpent => {
                    // Still listed (the flag stays set): flushed first
                    // thing next turn, which polls without waiting.
                    self.stats.write_budget_exhausted += 1;
                    conn.list(List::Flush);
                    self.flush_next.push(id);
                }
                FlushEnd::Blocked => {
                    self.stats.writes_blocked += 1;
                    self.conns.write_event(id, WriteEvent::Blocked);
                    self.update_interest(id);
                }
                FlushEnd::Failed(e) => {
                    self.close(id, CloseReason::from_io(e));
                }
            }
            if resume_handling {
                self.queue_handling(id);
            }
        }
        self.to_flush.give_back(batch);
        self.run_close_hooks(handler);
        for id in drained {
            if self.is_open(id) {
                self.call_hook(handler, "on_drained", |h, cx| h.on_drained(cx, id));
                self.run_close_hooks(handler);
            }
        }
    }

    /// Lets the handler answer a refusal (an error reply, say).
    fn tell_refusal<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
        id: ConnId,
    ) {
        let Some(error) = self.conns.get_mut(id).and_then(|c| c.take_refusal()) else {
            return;
        };
        if !self.call_hook(handler, "on_decode_error", |h, cx| {
            h.on_decode_error(cx, id, &error)
        }) {
            self.close(id, CloseReason::HandlerPanic);
        }
        self.run_close_hooks(handler);
        if let Some(conn) = self.conns.get_mut(id) {
            conn.set_refusal(error);
        }
    }

    /// Closes `id` once its output is written (at once if there is none),
    /// for the reason `farewell` names.
    fn close_once_written(&mut self, id: ConnId, farewell: Farewell) {
        let Some(conn) = self.conns.get(id).filter(|c| c.is_open()) else {
            return;
        };
        if conn.has_output() {
            self.conns.set_lifecycle(id, Lifecycle::Closing(farewell));
            self.update_interest(id);
            self.queue_flush(id);
        } else {
            self.finish_farewell(id, farewell);
        }
    }

    pub(crate) fn farewell_reason(&mut self, id: ConnId, farewell: Farewell) -> CloseReason {
        match farewell {
            Farewell::PeerClosed => CloseReason::PeerClosed,
            Farewell::ByHandler => CloseReason::ClosedByHandler,
            Farewell::Refused => match self.conns.get_mut(id).and_then(|c| c.take_refusal()) {
                Some(error) => CloseReason::refused(*error),
                None => CloseReason::ProtocolError("input refused".into()),
            },
        }
    }

    /// Everything queued was written: out of `outputs`, and a connection
    /// that was only waiting for that closes.
    fn flushed_all(&mut self, id: ConnId) {
        self.conns.write_event(id, WriteEvent::Drained);
        self.update_interest(id);
        let Some(conn) = self.conns.get(id) else {
            return;
        };
        if let Lifecycle::Closing(farewell) = conn.state().lifecycle() {
            self.finish_farewell(id, farewell);
        }
    }

    /// Brings the backend's registration in line with what the connection
    /// wants; a no-op (no system call) when nothing changed.
    pub(crate) fn update_interest(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let wanted = conn.wanted_interest();
        let current = conn.interest();
        if wanted == current {
            return;
        }
        let fd = conn.socket().raw_source();
        self.stats.interest_changes += 1;
        let result = match (current, wanted) {
            (None, Some(interest)) => self.backend.add(fd, id.token(), interest),
            (Some(_), Some(interest)) => self.backend.modify(fd, id.token(), interest),
            (Some(_), None) => self.backend.delete(fd),
            (None, None) => Ok(()),
        };
        match result {
            Ok(()) => {
                if let Some(conn) = self.conns.get_mut(id) {
                    conn.set_interest(wanted);
                }
            }
            Err(e) => {
                self.close(id, CloseReason::Error(e));
            }
        }
    }
}
