//! The loop's own timers, run in phase 8 after the handler's: listeners
//! re-armed after a back-off, connects past their deadline, lingering
//! closes that ran out, and a slice of the sweep that closes connections
//! idle past `Config::idle_timeout` (no byte moved either way) or slower
//! than `Config::message_deadline` (a message begun and not finished), each
//! connection by its own timeouts.

use std::any::Any;
use std::time::Instant;

use super::Core;
use crate::close::CloseReason;
use crate::conn::Expired;
use crate::handler::{Context, Handler};
use crate::limits::Limit;
use crate::schedule::TimerId;

/// What a handler's timer carries, if anything: a value for
/// [`Handler::on_timer_value`], or a closure the loop calls in place of
/// the handler.
pub(crate) enum TimerPayload {
    Value(Box<dyn Any>),
    Once(Box<dyn FnOnce(&mut Context<'_>)>),
    Every(Box<dyn FnMut(&mut Context<'_>)>),
}

impl Core {
    /// Phase 8, the handler's part: each due timer that no hook of this
    /// batch cancelled fires: its closure runs, or the handler hears of
    /// it (with its value, if it carries one).
    pub(crate) fn fire_timers<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
        due: &mut Vec<TimerId>,
    ) {
        self.timers.collect_due(Instant::now(), due);
        for timer in due.drain(..) {
            let Some(payload) = self.timers.fire(timer) else {
                continue; // cancelled by an earlier hook of this batch
            };
            self.stats.timers_fired += 1;
            match payload {
                None => {
                    self.call_hook(handler, "on_timer", |h, cx| h.on_timer(cx, timer));
                }
                Some(TimerPayload::Value(value)) => {
                    self.call_hook(handler, "on_timer_value", |h, cx| {
                        h.on_timer_value(cx, timer, value);
                    });
                }
                Some(TimerPayload::Once(call)) => {
                    self.call_hook(handler, "a timer's closure", |_, cx| call(cx));
                }
                Some(TimerPayload::Every(mut call)) => {
                    self.call_hook(handler, "a timer's closure", |_, cx| call(cx));
                    // Back in its place, unless it cancelled itself.
                    self.timers.restore(timer, TimerPayload::Every(call));
                }
            }
            self.run_close_hooks(handler);
        }
    }

    /// Phase 8, the loop's part: re-arms paused listeners, fails late
    /// connects, ends lingering closes, kicks idle and slow connections.
    pub(crate) fn run_loop_timers<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
    ) {
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
