//! The loop's own timers, run in phase 8 after the handler's: listeners
//! re-armed after a back-off, connects past their deadline, and the sweep
//! that closes connections idle past [`Config::idle_timeout`] (no byte
//! moved either way) or slower than [`Config::message_deadline`] (a
//! message begun and not finished), each connection by its own timeouts
//! (the configured ones, unless its handler set others).

use std::time::{Duration, Instant};

use crate::close::CloseReason;
use crate::config::Config;
use crate::core::Core;
use crate::handler::Handler;
use crate::limits::{self, Limit};
use crate::timer;
use crate::token::ConnId;

/// When connections are next checked against the idle timeout and the
/// message deadline.
#[derive(Debug)]
pub(crate) struct Sweeper {
    interval: Option<Duration>,
    next_at: Option<Instant>,
}

impl Sweeper {
    pub(crate) fn new(config: &Config, now: Instant) -> Sweeper {
        let interval = limits::sweep_interval(config.idle_timeout, config.message_deadline);
        Sweeper {
            interval,
            next_at: interval.map(|i| timer::deadline_after(now, i)),
        }
    }

    pub(crate) fn next_at(&self) -> Option<Instant> {
        self.next_at
    }

    /// A connection was given a timeout of its own: sweep at least as
    /// often as it needs (a tenth of it), starting now if no sweep was due.
    pub(crate) fn cover(&mut self, timeout: Duration, now: Instant) {
        let Some(needed) = limits::sweep_interval(Some(timeout), None) else {
            return;
        };
        if self.interval.is_none_or(|interval| needed < interval) {
            self.interval = Some(needed);
            let next = timer::deadline_after(now, needed);
            self.next_at = Some(self.next_at.map_or(next, |at| at.min(next)));
        }
    }
}

impl Core {
    /// Phase 8, the loop's part: re-arms paused listeners, fails late
    /// connects, kicks idle and slow connections.
    pub(crate) fn run_loop_timers<H: Handler + ?Sized>(&mut self, handler: &mut H) {
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
        if self.sweeper.next_at.is_some_and(|at| at <= now) {
            self.sweeper.next_at = self.sweeper.interval.map(|i| timer::deadline_after(now, i));
            self.sweep_timeouts();
            self.run_close_hooks(handler);
        }
    }

    fn sweep_timeouts(&mut self) {
        let now_ms = self.now_ms;
        // Strictly more than the limit in whole milliseconds: never early.
        let over = |since: u64, limit_ms: u32| {
            limit_ms > 0 && since != 0 && now_ms.saturating_sub(since) > u64::from(limit_ms)
        };
        let victims: Vec<(ConnId, CloseReason, Limit)> = self
            .conns
            .iter()
            .filter_map(|c| {
                if over(c.last_progress_ms, c.timeouts.idle_ms) {
                    Some((c.id, CloseReason::IdleTimeout, Limit::IdleTimeout))
                } else if over(c.partial_since_ms, c.timeouts.message_ms) {
                    Some((c.id, CloseReason::MessageTimeout, Limit::MessageDeadline))
                } else {
                    None
                }
            })
            .collect();
        for (id, reason, limit) in victims {
            self.limit_hit(limit, format_args!("{id} closed"));
            self.close(id, reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection given a shorter timeout than the configured ones makes
    /// the sweep come as often as it needs; a longer one changes nothing;
    /// with none configured, the first one starts the sweep.
    #[test]
    fn a_shorter_timeout_of_one_connection_tightens_the_sweep() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        let mut sweeper = Sweeper::new(&Config::new().idle_timeout(Duration::from_secs(10)), now);
        assert_eq!(sweeper.interval, Some(Duration::from_secs(1)));
        sweeper.cover(Duration::from_secs(60), now);
        assert_eq!(
            sweeper.interval,
            Some(Duration::from_secs(1)),
            "a longer one"
        );
        sweeper.cover(ms(300), now);
        assert_eq!(sweeper.interval, Some(ms(30)));
        assert!(sweeper.next_at.is_some_and(|at| at <= now + ms(30)));
        let mut idle = Sweeper::new(&Config::new(), now);
        assert_eq!(idle.next_at, None);
        idle.cover(ms(500), now);
        assert_eq!(
            (idle.interval, idle.next_at),
            (Some(ms(50)), Some(now + ms(50)))
        );
    }
}
