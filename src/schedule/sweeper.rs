//! When connections are checked against their idle timeout and message
//! deadline, and which of them each check looks at.
//!
//! Every connection is checked once per *pass*, a tenth of the shortest
//! timeout in force (so a connection is closed at most 10% late), and a pass
//! is cut into slices spread over it (Redis's `clientsCron` does the same):
//! with 100,000 connections a turn checks a few thousand of them, not all,
//! so no turn stalls the clients that are busy.

use std::ops::Range;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::limits;
use crate::schedule::deadline_after;

/// Slices a pass is cut into, at most.
const SLICES_PER_PASS: u32 = 10;

/// No slice is shorter than this in time: a short pass is cut into fewer
/// slices rather than wake the loop more often than every 10 ms.
const SHORTEST_SLICE: Duration = Duration::from_millis(10);

/// Slots one slice looks at, at least: below this, slicing saves nothing.
const FEWEST_SLOTS: usize = 1024;

/// Where the sweep stands: how long a pass takes, when the next slice is
/// due, and the slot it starts from.
#[derive(Debug)]
pub(crate) struct Sweeper {
    /// Time for a whole pass; `None`: no timeout in force, no sweep.
    interval: Option<Duration>,
    next_at: Option<Instant>,
    /// The first slot the next slice checks.
    cursor: usize,
}

impl Sweeper {
    pub(crate) fn new(config: &Config, now: Instant) -> Sweeper {
        let interval = limits::sweep_interval(config.idle_timeout, config.message_deadline);
        Sweeper {
            interval,
            next_at: interval.map(|i| deadline_after(now, slice_time(i))),
            cursor: 0,
        }
    }

    pub(crate) fn next_at(&self) -> Option<Instant> {
        self.next_at
    }

    /// A connection was given a timeout of its own: sweep at least as
    /// often as it needs (a pass in a tenth of it), starting now if no
    /// sweep was due.
    pub(crate) fn cover(&mut self, timeout: Duration, now: Instant) {
        let Some(needed) = limits::sweep_interval(Some(timeout), None) else {
            return;
        };
        if self.interval.is_none_or(|interval| needed < interval) {
            self.interval = Some(needed);
            let next = deadline_after(now, slice_time(needed));
            self.next_at = Some(self.next_at.map_or(next, |at| at.min(next)));
        }
    }

    /// If a slice is due by `now`: the slots (out of `0..slots`) to check,
    /// and the next slice is scheduled. Consecutive slices walk the table
    /// round, so each slot is checked once per pass.
    pub(crate) fn due_slice(&mut self, now: Instant, slots: usize) -> Option<Range<usize>> {
        let interval = self.interval?;
        if self.next_at.is_none_or(|at| at > now) {
            return None;
        }
        self.next_at = Some(deadline_after(now, slice_time(interval)));
        let per_slice = slots.div_ceil(slices(interval) as usize).max(FEWEST_SLOTS);
        let start = if self.cursor >= slots { 0 } else { self.cursor };
        let end = slots.min(start + per_slice);
        self.cursor = end;
        Some(start..end)
    }
}

/// How many slices a pass of `interval` is cut into.
fn slices(interval: Duration) -> u32 {
    let fitting = interval.as_millis() / SHORTEST_SLICE.as_millis();
    (fitting as u32).clamp(1, SLICES_PER_PASS)
}

/// Time between two slices of a pass of `interval`.
fn slice_time(interval: Duration) -> Duration {
    interval / slices(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pass checks every slot once, in slices of a tenth of the table
    /// (never fewer than 1,024 slots), one slice per tick: a slot is never
    /// skipped, and no slice walks the whole of a large table.
    #[test]
    fn slices_walk_the_whole_table_once_per_pass() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // A 10 s idle timeout: a pass of 1 s, in ten slices 100 ms apart.
        let mut sweeper = Sweeper::new(&Config::new().idle_timeout(Duration::from_secs(10)), t0);
        assert_eq!(sweeper.next_at, Some(t0 + ms(100)));
        assert_eq!(sweeper.due_slice(t0 + ms(99), 100_000), None, "not due yet");
        let mut seen = vec![0u8; 100_000];
        let mut now = t0 + ms(100);
        for tick in 0..10 {
            let slice = sweeper.due_slice(now, 100_000).expect("a slice is due");
            assert_eq!(slice.len(), 10_000, "tick {tick}: {slice:?}");
            seen[slice].iter_mut().for_each(|s| *s += 1);
            assert_eq!(sweeper.next_at, Some(now + ms(100)));
            assert_eq!(sweeper.due_slice(now, 100_000), None, "one slice per tick");
            now += ms(100);
        }
        assert!(seen.iter().all(|&s| s == 1), "every slot once per pass");
        // The next pass starts over, and a table that shrank meanwhile is
        // walked from its start.
        assert_eq!(sweeper.due_slice(now, 100_000), Some(0..10_000));
        now += ms(100);
        assert_eq!(sweeper.due_slice(now, 5_000), Some(0..1_024));
        now += ms(100);
        assert_eq!(sweeper.due_slice(now, 5_000), Some(1_024..2_048));
        // A small table is checked whole at every tick.
        let mut small = Sweeper::new(&Config::new().idle_timeout(Duration::from_secs(10)), t0);
        assert_eq!(small.due_slice(t0 + ms(100), 300), Some(0..300));
        assert_eq!(small.due_slice(t0 + ms(200), 300), Some(0..300));
        // A short timeout: a pass of 30 ms in three slices of 10 ms.
        let short = Sweeper::new(&Config::new().idle_timeout(ms(300)), t0);
        assert_eq!(short.next_at, Some(t0 + ms(10)));
        let mut none = Sweeper::new(&Config::new(), t0);
        assert_eq!(none.due_slice(t0 + Duration::from_secs(99), 10), None);
    }

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
            (Some(ms(50)), Some(now + ms(10)))
        );
    }
}
