//! Counters the loop keeps about itself.
//!
//! Tests assert on these instead of sleeping and hoping; operators export them.

use crate::close::CloseReason;

/// What the reactor has done since it was created. Every field only grows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Turns of the loop (calls of the dispatch step).
    pub turns: u64,
    /// Turns that asked the backend for events. The others served work
    /// left by a turn that had asked (sockets that filled their read
    /// budget, output still to flush) without asking again.
    pub polls: u64,
    /// Events taken from the backend.
    pub events: u64,
    /// Events for a connection that had closed, possibly with its slot reused
    /// by a newer one: counted here and otherwise ignored.
    pub stale_events: u64,
    /// Connections accepted.
    pub accepted: u64,
    /// Connections refused because [`Config::max_connections`](crate::Config::max_connections)
    /// was reached.
    pub rejected: u64,
    /// Connections closed, for any reason; the fields below split them.
    pub closed: u64,
    /// ... because the peer ended its input.
    pub closed_by_peer: u64,
    /// ... because the peer reset the connection (`ECONNRESET`, `EPIPE`).
    pub resets: u64,
    /// ... because of another I/O error.
    pub errors: u64,
    /// ... because the handler closed them.
    pub closed_by_handler: u64,
    /// ... because a message exceeded the codec maximum.
    pub frames_too_long: u64,
    /// ... because their decoder refused their bytes as breaking the protocol.
    pub protocol_errors: u64,
    /// ... because they completed no message within the idle timeout.
    pub idle_kicks: u64,
    /// ... because a message took longer than the message deadline.
    pub deadline_kicks: u64,
    /// ... because their output passed the hard output limit.
    pub output_limit_kicks: u64,
    /// ... because a handler hook panicked while serving them.
    pub panic_kicks: u64,
    /// ... by a graceful shutdown.
    pub shutdown_closes: u64,
    /// Connections dropped as they came because the backend would not watch
    /// their descriptor: `select(2)` past `FD_SETSIZE`, or the poller out
    /// of memory.
    pub unwatchable: u64,
    /// Failed `accept` calls other than `WouldBlock` and aborted connections.
    pub accept_errors: u64,
    /// Times accepting paused because descriptors or socket memory ran out.
    pub accept_pauses: u64,
    /// Connections accepted and closed at once because descriptors ran out
    /// ([`EmfilePolicy::Shed`](crate::EmfilePolicy::Shed)).
    pub accept_shed: u64,
    /// Times a connection's flush stopped at the per-turn write budget
    /// ([`Config::write_budget`](crate::Config::write_budget)) with output
    /// left, to be written on the next turn.
    pub write_budget_exhausted: u64,
    /// Handler hooks that panicked (caught).
    pub handler_panics: u64,
    /// Connections closed by the server that lingered first: their answer
    /// written and their sending side shut, what the peer still sent was
    /// read and discarded until it closed too (or
    /// [`Config::lingering_close`](crate::Config::lingering_close) passed),
    /// so that it read its answer instead of a reset.
    pub lingered: u64,
    /// Times a connection's reading paused because its inbound queue was full.
    pub read_pauses: u64,
    /// Messages handed to the handler.
    pub messages: u64,
    /// Sends queued by handlers (`send`, `send_parts`, `send_frame`).
    pub messages_out: u64,
    /// Bytes read from connections.
    pub bytes_read: u64,
    /// Bytes written to connections.
    pub bytes_written: u64,
    /// Writes that returned `WouldBlock`, each of which put a connection in
    /// the writable set.
    pub writes_blocked: u64,
    /// Changes of a connection's registered interest after it was accepted
    /// (each one `epoll_ctl`). Zero on a steady path whose writes all finish.
    pub interest_changes: u64,
    /// Times a connection or listener spent its per-turn budget and was put
    /// on the ready list.
    pub budget_exhausted: u64,
    /// Timer hooks run.
    pub timers_fired: u64,
    /// Commands received from [`Handle`](crate::Handle)s.
    pub handle_commands: u64,
    /// Wake-ups of the poll by handles and workers; many commands share one.
    pub handle_wakeups: u64,
    /// Handle commands (and job results) for connections that had closed.
    pub handle_undelivered: u64,
    /// Jobs accepted by the worker pool.
    pub jobs_submitted: u64,
    /// Jobs refused because the pool's queue was full.
    pub jobs_rejected: u64,
    /// Job results delivered on the loop thread.
    pub jobs_done: u64,
    /// Job results dropped because their connection had closed.
    pub jobs_dropped: u64,
    /// Outbound connections that completed.
    pub connects: u64,
    /// Outbound connections that failed or timed out.
    pub connect_failures: u64,
    /// Datagrams received on datagram sockets.
    pub datagrams_in: u64,
    /// Datagrams sent (at once, or from the queue).
    pub datagrams_out: u64,
    /// Datagrams not sent: the queue was full, or the system refused them.
    pub datagrams_dropped: u64,
}

/// Adds another loop's counters to these: the figures of a
/// [`Group`](crate::Group) of reactors, summed.
///
/// ```
/// use selectloop::Stats;
/// let mut one = Stats::default();
/// one.accepted = 2;
/// let total: Stats = [one, one].into_iter().sum();
/// assert_eq!(total.accepted, 4);
/// ```
impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, other: Stats) {
        // Destructured without `..`: a new counter that is not summed here
        // does not compile.
        let Stats {
            turns,
            polls,
            events,
            stale_events,
            accepted,
            rejected,
            closed,
            closed_by_peer,
            resets,
            errors,
            closed_by_handler,
            frames_too_long,
            protocol_errors,
            idle_kicks,
            deadline_kicks,
            output_limit_kicks,
            panic_kicks,
            shutdown_closes,
            unwatchable,
            accept_errors,
            accept_pauses,
            accept_shed,
            write_budget_exhausted,
            handler_panics,
            lingered,
            read_pauses,
            messages,
            messages_out,
            bytes_read,
            bytes_written,
            writes_blocked,
            interest_changes,
            budget_exhausted,
            timers_fired,
            handle_commands,
            handle_wakeups,
            handle_undelivered,
            jobs_submitted,
            jobs_rejected,
            jobs_done,
            jobs_dropped,
            connects,
            connect_failures,
            datagrams_in,
            datagrams_out,
            datagrams_dropped,
        } = other;
        self.turns += turns;
        self.polls += polls;
        self.events += events;
        self.stale_events += stale_events;
        self.accepted += accepted;
        self.rejected += rejected;
        self.closed += closed;
        self.closed_by_peer += closed_by_peer;
        self.resets += resets;
        self.errors += errors;
        self.closed_by_handler += closed_by_handler;
        self.frames_too_long += frames_too_long;
        self.protocol_errors += protocol_errors;
        self.idle_kicks += idle_kicks;
        self.deadline_kicks += deadline_kicks;
        self.output_limit_kicks += output_limit_kicks;
        self.panic_kicks += panic_kicks;
        self.shutdown_closes += shutdown_closes;
        self.unwatchable += unwatchable;
        self.accept_errors += accept_errors;
        self.accept_pauses += accept_pauses;
        self.accept_shed += accept_shed;
        self.write_budget_exhausted += write_budget_exhausted;
        self.handler_panics += handler_panics;
        self.lingered += lingered;
        self.read_pauses += read_pauses;
        self.messages += messages;
        self.messages_out += messages_out;
        self.bytes_read += bytes_read;
        self.bytes_written += bytes_written;
        self.writes_blocked += writes_blocked;
        self.interest_changes += interest_changes;
        self.budget_exhausted += budget_exhausted;
        self.timers_fired += timers_fired;
        self.handle_commands += handle_commands;
        self.handle_wakeups += handle_wakeups;
        self.handle_undelivered += handle_undelivered;
        self.jobs_submitted += jobs_submitted;
        self.jobs_rejected += jobs_rejected;
        self.jobs_done += jobs_done;
        self.jobs_dropped += jobs_dropped;
        self.connects += connects;
        self.connect_failures += connect_failures;
        self.datagrams_in += datagrams_in;
        self.datagrams_out += datagrams_out;
        self.datagrams_dropped += datagrams_dropped;
    }
}

impl std::iter::Sum for Stats {
    fn sum<I: Iterator<Item = Stats>>(iter: I) -> Stats {
        iter.fold(Stats::default(), |mut total, one| {
            total += one;
            total
        })
    }
}

impl Stats {
    /// Counts a close under its reason.
    pub(crate) fn count_close(&mut self, reason: &CloseReason) {
        self.closed += 1;
        let counter = match reason {
            CloseReason::PeerClosed => &mut self.closed_by_peer,
            CloseReason::Reset => &mut self.resets,
            CloseReason::Error(_) => &mut self.errors,
            CloseReason::ClosedByHandler => &mut self.closed_by_handler,
            CloseReason::FrameTooLong(_) => &mut self.frames_too_long,
            CloseReason::ProtocolError(_) => &mut self.protocol_errors,
            CloseReason::IdleTimeout => &mut self.idle_kicks,
            CloseReason::MessageTimeout => &mut self.deadline_kicks,
            CloseReason::OutputLimit => &mut self.output_limit_kicks,
            CloseReason::HandlerPanic => &mut self.panic_kicks,
            CloseReason::Shutdown => &mut self.shutdown_closes,
            CloseReason::ConnectFailed(_) => &mut self.connect_failures,
        };
        *counter += 1;
    }
}
