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
const SLICES_PER_PASS: usize = 10;

/// No slice is shorter than this in time: a short pass is cut into fewer
/// slices rather than wake the loop more often than every 10 ms.
const SHORTEST_SLICE: Duration = Duration::from_millis(10);

/// Slots a slice looks at, at least. Checking a slot costs about 13 ns
/// (measured: a pass over 18,900 connections took 0.25 ms), so 8,192 slots
/// are about 100 us of work; below that, a wake-up of the loop costs more
/// than slicing saves.
const FEWEST_SLOTS: usize = 8 * 1024;

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
            next_at: interval.map(|i| deadline_after(now, i)),
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
            let next = deadline_after(now, needed);
            self.next_at = Some(self.next_at.map_or(next, |at| at.min(next)));
        }
    }

    /// If a slice is due by `now`: the slots (out of `0..slots`) to check,
    /// and the next slice is scheduled. Consecutive slices walk the table
    /// round, so each slot is checked once per pass. A table of 8,192
    /// slots or fewer is one slice: a small server wakes once a pass, not
    /// ten times.
    pub(crate) fn due_slice(&mut self, now: Instant, slots: usize) -> Option<Range<usize>> {
        let interval = self.interval?;
        if self.next_at.is_none_or(|at| at > now) {
            return None;
        }
        let slices = slices(interval, slots);
        self.next_at = Some(deadline_after(now, interval / slices as u32));
        let per_slice = slots.div_ceil(slices).max(1);
        // One slice is the whole table, wherever the last pass stopped.
        let start = if slices == 1 || self.cursor >= slots {
            0
        } else {
            self.cursor
        };
        let end = slots.min(start + per_slice);
        self.cursor = end;
        Some(start..end)
    }
}

/// How many slices a pass of `interval` over `slots` is cut into: one per
/// 8,192 slots, at most ten, and none shorter than 10 ms.
fn slices(interval: Duration, slots: usize) -> usize {
    let by_time = (interval.as_millis() / SHORTEST_SLICE.as_millis()) as usize;
    let by_size = slots.div_ceil(FEWEST_SLOTS);
    by_size.min(by_time).clamp(1, SLICES_PER_PASS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pass checks every slot once, in slices of a tenth of the table
    /// (a slice per 8,192 slots at least), one slice per tick: a slot is
    /// never skipped, and no slice walks the whole of a large table.
    #[test]
    fn slices_walk_the_whole_table_once_per_pass() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // A 10 s idle timeout: a pass a second.
        let config = Config::new().idle_timeout(Duration::from_secs(10));
        let mut sweeper = Sweeper::new(&config, t0);
        assert_eq!(sweeper.next_at(), Some(t0 + ms(1000)));
        assert_eq!(
            sweeper.due_slice(t0 + ms(999), 100_000),
            None,
            "not due yet"
        );
        // 100,000 slots: ten slices of 10,000, 100 ms apart.
        let mut seen = vec![0u8; 100_000];
        let mut now = t0 + ms(1000);
        for tick in 0..10 {
            let slice = sweeper.due_slice(now, 100_000).expect("a slice is due");
            assert_eq!(slice.len(), 10_000, "tick {tick}: {slice:?}");
            seen[slice].iter_mut().for_each(|s| *s += 1);
            assert_eq!(sweeper.next_at, Some(now + ms(100)));
            assert_eq!(sweeper.due_slice(now, 100_000), None, "one slice per tick");
            now += ms(100);
        }
        assert!(seen.iter().all(|&s| s == 1), "every slot once per pass");
        // The next pass starts over and goes on where it stopped, in a
        // slice per 8,192 slots when the table shrank; past the end of a
        // table that shrank below the cursor, from the start.
        assert_eq!(sweeper.due_slice(now, 100_000), Some(0..10_000));
        now += ms(100);
        assert_eq!(sweeper.due_slice(now, 40_000), Some(10_000..18_000));
        assert_eq!(sweeper.next_at, Some(now + ms(200)), "five slices a pass");
        now += ms(200);
        assert_eq!(sweeper.due_slice(now, 16_000), Some(0..8_000));
        // A small table is one slice, once a pass.
        let mut small = Sweeper::new(&config, t0);
        assert_eq!(small.due_slice(t0 + ms(1000), 300), Some(0..300));
        assert_eq!(small.next_at, Some(t0 + ms(2000)));
        assert_eq!(small.due_slice(t0 + ms(2000), 8_192), Some(0..8_192));
        // A short timeout: a pass of 30 ms, in three slices of 10 ms at most.
        let mut short = Sweeper::new(&Config::new().idle_timeout(ms(300)), t0);
        assert_eq!(short.due_slice(t0 + ms(30), 100_000), Some(0..33_334));
        assert_eq!(short.next_at, Some(t0 + ms(40)));
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
            (Some(ms(50)), Some(now + ms(50)))
        );
    }
}
