//! The loop's own timers, run in phase 8 after the handler's: listeners
//! re-armed after a back-off, connects past their deadline, lingering
//! closes that ran out, and a slice of the sweep that closes connections
//! idle past `Config::idle_timeout` (no byte moved either way) or slower
//! than `Config::message_deadline` (a message begun and not finished), each
//! connection by its own timeouts.

use std::time::Instant;

use super::Core;
use crate::close::CloseReason;
use crate::conn::Expired;
use crate::handler::Handler;
use crate::limits::Limit;

impl Core {
    /// Phase 8, the loop's part: re-arms paused listeners, fails late
    /// connects, ends lingering closes, kicks idle and slow connections.
    pub(crate) fn run_loop_timers<I: 'static, H: Handler<I> + ?Sized>(&mut self, handler: &mut H) {
        let now = Instant::now();
        if !self.shutting_down && self.listeners.resume_at().is_some_and(|at| at <= now) {
            self.resume_listeners(now);
        }
        if self.connects.next_at().is_some_and(|at| at <= now) {
            self.expire_connects(now);
            self.run_close_hooks(handler);
        }
        if self.lingering.next_at().is_some_and(|at| at <= now) {
            self.expire_lingering(now);
            self.run_close_hooks(handler);
        }
        if self.sweeper.next_at().is_some_and(|at| at <= now) {
            self.sweep_timeouts(now);
            self.run_close_hooks(handler);
        }
    }

    /// Checks the slice of the table that is due: no allocation, and a
    /// bounded share of the connections per turn.
    fn sweep_timeouts(&mut self, now: Instant) {
        let Some(slots) = self.sweeper.due_slice(now, self.conns.slots()) else {
            return;
        };
        let now_ms = self.now_ms;
        for slot in slots {
            let Some((id, expired)) = self.conns.expired(slot, now_ms) else {
                continue;
            };
            let (reason, limit) = match expired {
                Expired::Idle => (CloseReason::IdleTimeout, Limit::IdleTimeout),
                Expired::Message => (CloseReason::MessageTimeout, Limit::MessageDeadline),
            };
            self.limit_hit(limit, format_args!("{id} closed"));
            self.close(id, reason);
        }
    }
}
