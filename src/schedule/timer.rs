//! Timers: one-shot and periodic, kept in deadline order.
//!
//! The Python server wakes up every second whether or not anything is due
//! (`select(..., 1)`). Here the poll timeout is the time to the next deadline,
//! so an idle reactor sleeps exactly as long as it may.
//!
//! Timers live in a slab (so a [`TimerId`] can be cancelled in O(1)) and a
//! binary heap of deadlines. Cancelling only removes the slab entry; the heap
//! entry is skipped when it comes up, and the heap is rebuilt if such dead
//! entries ever outnumber the live ones.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::time::{Duration, Instant};

use slab::Slab;

/// The shortest period a periodic timer may have; shorter ones, zero
/// included, are raised to it. A period of zero would make every firing due
/// again at once: the loop would fire it forever without ever polling.
pub const MIN_PERIOD: Duration = Duration::from_millis(1);

/// How far ahead "never" is: a deadline past the clock's range (a timeout
/// of `Duration::MAX`, say) is put here instead of panicking on overflow.
const NEVER: Duration = Duration::from_secs(100 * 365 * 86_400);

/// `now + after`, saturated to a deadline that never comes in practice
/// rather than overflowing `Instant` (which panics).
pub(crate) fn deadline_after(now: Instant, after: Duration) -> Instant {
    now.checked_add(after)
        .or_else(|| now.checked_add(NEVER))
        .or_else(|| now.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(now)
}

/// Names a timer set with [`Context::set_timer`](crate::Context::set_timer) or
/// [`Context::set_periodic`](crate::Context::set_periodic).
///
/// Like [`ConnId`](crate::ConnId), it carries a generation, so cancelling an id
/// whose timer already fired never cancels a newer timer in the same slot.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId {
    key: usize,
    generation: u64,
}

impl fmt::Debug for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timer#{}.{}", self.key, self.generation)
    }
}

/// One pending timer, with what it carries (of type `P`, which the loop
/// chooses: a value for the handler, or a closure; this part never looks
/// inside).
struct Entry<P> {
    generation: u64,
    deadline: Instant,
    period: Option<Duration>,
    payload: Option<P>,
}

/// Heap entries order by deadline, then by creation (`generation` is a global
/// sequence number), so timers due at the same instant fire in the order set.
type HeapEntry = Reverse<(Instant, u64, usize)>;

pub(crate) struct Timers<P> {
    entries: Slab<Entry<P>>,
    heap: BinaryHeap<HeapEntry>,
    next_generation: u64,
}

impl<P> Default for Timers<P> {
    fn default() -> Timers<P> {
        Timers {
            entries: Slab::new(),
            heap: BinaryHeap::new(),
            next_generation: 0,
        }
    }
}

impl<P> fmt::Debug for Timers<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timers")
            .field("pending", &self.entries.len())
            .finish()
    }
}

impl<P> Timers<P> {
    #[cfg(test)]
    pub(crate) fn insert(&mut self, deadline: Instant, period: Option<Duration>) -> TimerId {
        self.insert_with(deadline, period, None)
    }

    /// A timer that carries `payload`, handed back when it fires.
    pub(crate) fn insert_with(
        &mut self,
        deadline: Instant,
        period: Option<Duration>,
        payload: Option<P>,
    ) -> TimerId {
        let period = period.map(|p| p.max(MIN_PERIOD));
        let generation = self.next_generation;
        self.next_generation += 1;
        let key = self.entries.insert(Entry {
            generation,
            deadline,
            period,
            payload,
        });
        self.heap.push(Reverse((deadline, generation, key)));
        TimerId { key, generation }
    }

    /// Returns whether the timer was still pending.
    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        match self.entries.get(id.key) {
            Some(entry) if entry.generation == id.generation => {
                self.entries.remove(id.key);
                self.compact_if_mostly_dead();
                true
            }
            _ => false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((deadline, generation, key))) = self.heap.peek().copied() {
            if self.is_live(key, generation) {
                return Some(deadline);
            }
            self.heap.pop();
        }
        None
    }

    /// Moves every timer due at `now` into `due`, in deadline order.
    ///
    /// Periodic timers are rescheduled at once. One-shot timers stay pending
    /// until [`fire`](Timers::fire) is called for them, so that a timer
    /// cancelled by an earlier hook of the same batch does not fire.
    pub(crate) fn collect_due(&mut self, now: Instant, due: &mut Vec<TimerId>) {
        while let Some(Reverse((deadline, generation, key))) = self.heap.peek().copied() {
            if deadline > now {
                break;
            }
            self.heap.pop();
            if !self.is_live(key, generation) {
                continue;
            }
            if let Some(period) = self.entries[key].period {
                // Missed periods are skipped rather than fired in a burst.
                let mut next = deadline_after(deadline, period);
                if next <= now {
                    next = deadline_after(now, period);
                }
                self.entries[key].deadline = next;
                self.heap.push(Reverse((next, generation, key)));
            }
            due.push(TimerId { key, generation });
        }
    }

    /// Consumes a due timer just before its hook runs: `None` if it was
    /// cancelled since [`collect_due`](Timers::collect_due) reported it,
    /// else what it carries. A periodic timer lends its payload out: give
    /// it back with [`restore`](Timers::restore) after the call.
    pub(crate) fn fire(&mut self, id: TimerId) -> Option<Option<P>> {
        if !self.is_live(id.key, id.generation) {
            return None;
        }
        if self.entries[id.key].period.is_none() {
            return Some(self.entries.remove(id.key).payload);
        }
        Some(self.entries[id.key].payload.take())
    }

    /// Gives a periodic timer its payload back, unless it was cancelled
    /// meanwhile (then the payload is dropped here).
    pub(crate) fn restore(&mut self, id: TimerId, payload: P) {
        if self.is_live(id.key, id.generation) {
            self.entries[id.key].payload = Some(payload);
        }
    }

    /// Whether `id` still names a pending timer.
    pub(crate) fn contains(&self, id: TimerId) -> bool {
        self.is_live(id.key, id.generation)
    }

    fn is_live(&self, key: usize, generation: u64) -> bool {
        matches!(self.entries.get(key), Some(e) if e.generation == generation)
    }

    fn compact_if_mostly_dead(&mut self) {
        if self.heap.len() > 64 && self.heap.len() > 2 * self.entries.len() {
            let entries = &self.entries;
            self.heap
                .retain(|Reverse((_, generation, key))| {
                    matches!(entries.get(*key), Some(e) if e.generation == *generation)
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_timers_come_out_in_deadline_order() {
        let t0 = Instant::now();
        let mut timers = Timers::<()>::default();
        let late = timers.insert(t0 + Duration::from_millis(30), None);
        let early = timers.insert(t0 + Duration::from_millis(10), None);
        let not_yet = timers.insert(t0 + Duration::from_secs(60), None);
        let mut due = Vec::new();
        timers.collect_due(t0 + Duration::from_millis(40), &mut due);
        assert_eq!(due, [early, late]);
        assert!(timers.fire(early).is_some() && timers.fire(late).is_some());
        assert!(timers.fire(early).is_none(), "a one-shot timer fires once");
        assert!(timers.contains(not_yet));
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_secs(60)));
    }

    /// A one-shot timer's payload comes back once; a periodic one's is
    /// lent for each firing, and dropped if it was cancelled meanwhile.
    #[test]
    fn payloads_come_back_when_their_timer_fires() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let once = timers.insert_with(t0, None, Some("once"));
        let every = timers.insert_with(t0, Some(Duration::from_millis(5)), Some("every"));
        let bare = timers.insert(t0, None);
        let mut due = Vec::new();
        timers.collect_due(t0, &mut due);
        assert_eq!(due, [once, every, bare]);
        assert_eq!(timers.fire(once), Some(Some("once")));
        assert_eq!(timers.fire(once), None, "fired already");
        assert_eq!(timers.fire(every), Some(Some("every")));
        timers.restore(every, "every");
        assert_eq!(timers.fire(bare), Some(None));
        due.clear();
        timers.collect_due(t0 + Duration::from_millis(5), &mut due);
        assert_eq!(due, [every]);
        assert_eq!(timers.fire(every), Some(Some("every")), "lent again");
        assert!(timers.cancel(every));
        timers.restore(every, "every");
        assert!(!timers.contains(every), "a cancelled timer stays cancelled");
    }

    #[test]
    fn nothing_fires_before_its_deadline() {
        let t0 = Instant::now();
        let mut timers = Timers::<()>::default();
        timers.insert(t0 + Duration::from_millis(10), None);
        let mut due = Vec::new();
        timers.collect_due(t0 + Duration::from_millis(9), &mut due);
        assert!(due.is_empty());
    }

    #[test]
    fn cancelled_timers_never_fire_and_stale_ids_cancel_nothing() {
        let t0 = Instant::now();
        let mut timers = Timers::<()>::default();
        let a = timers.insert(t0, None);
        assert!(timers.cancel(a));
        assert!(!timers.cancel(a));
        let b = timers.insert(t0, None); // may reuse a's slot
        assert!(!timers.cancel(a), "an old id must not cancel the new timer");
        let mut due = Vec::new();
        timers.collect_due(t0, &mut due);
        assert_eq!(due, [b]);
        assert!(timers.fire(b).is_some());
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn a_due_timer_cancelled_by_an_earlier_hook_does_not_fire() {
        let t0 = Instant::now();
        let mut timers = Timers::<()>::default();
        let first = timers.insert(t0, None);
        let second = timers.insert(t0, None);
        let mut due = Vec::new();
        timers.collect_due(t0, &mut due);
        assert_eq!(due, [first, second]);
        assert!(timers.fire(first).is_some());
        assert!(timers.cancel(second)); // what `first`'s hook might do
        assert!(timers.fire(second).is_none());
    }

    #[test]
    fn periodic_timers_reschedule_and_skip_missed_periods() {
        let t0 = Instant::now();
        let period = Duration::from_millis(10);
        let mut timers = Timers::<()>::default();
        let tick = timers.insert(t0 + period, Some(period));
        let mut due = Vec::new();
        timers.collect_due(t0 + period, &mut due);
        assert_eq!(due, [tick]);
        assert_eq!(timers.next_deadline(), Some(t0 + 2 * period));
        due.clear();
        // Far behind: one firing, then the next period from now.
        let now = t0 + 10 * period;
        timers.collect_due(now, &mut due);
        assert_eq!(due, [tick]);
        assert_eq!(timers.next_deadline(), Some(now + period));
    }

    /// A zero period used to reschedule the timer at `now + 0`, due again
    /// at once: `collect_due` never returned and the heap grew without end.
    #[test]
    fn zero_period_is_raised_to_the_minimum_and_fires_once_per_collection() {
        let t0 = Instant::now();
        let mut timers = Timers::<()>::default();
        let tick = timers.insert(t0, Some(Duration::ZERO));
        let mut due = Vec::new();
        timers.collect_due(t0, &mut due);
        assert_eq!(due, [tick]);
        assert_eq!(timers.next_deadline(), Some(t0 + MIN_PERIOD));
    }

    #[test]
    fn huge_periods_and_delays_saturate_instead_of_panicking() {
        let t0 = Instant::now();
        // "Never" is a century away: no timeout anyone sets comes near it.
        let fifty_years = Duration::from_secs(50 * 365 * 86_400);
        assert!(deadline_after(t0, Duration::MAX) > t0 + fifty_years);
        let mut timers = Timers::<()>::default();
        let tick = timers.insert(t0, Some(Duration::MAX));
        let mut due = Vec::new();
        timers.collect_due(t0, &mut due);
        assert_eq!(due, [tick]);
        assert!(timers.next_deadline().unwrap() > t0 + Duration::from_secs(86_400));
    }

    #[test]
    fn heap_is_rebuilt_when_cancelled_entries_pile_up() {
        let t0 = Instant::now();
        let mut timers = Timers::<()>::default();
        for _ in 0..1000 {
            let id = timers.insert(t0 + Duration::from_secs(3600), None);
            timers.cancel(id);
        }
        assert!(timers.heap.len() <= 130, "heap kept {}", timers.heap.len());
        assert_eq!(timers.len(), 0);
        // A few live timers among the cancelled ones: rebuilding keeps
        // them, and a small heap is never rebuilt at all.
        let live: Vec<_> = (0..10)
            .map(|i| timers.insert(t0 + Duration::from_secs(i), None))
            .collect();
        assert_eq!(timers.len(), 10);
        for _ in 0..1000 {
            let id = timers.insert(t0 + Duration::from_secs(3600), None);
            timers.cancel(id);
        }
        assert!(live.iter().all(|&id| timers.contains(id)));
        let gone = timers.insert(t0, None);
        timers.cancel(gone);
        assert!(!timers.contains(gone), "a cancelled timer is gone");
        // Many live timers, then most of them cancelled: the heap is
        // rebuilt once dead entries outnumber the live ones.
        let mut many = Timers::<()>::default();
        let ids: Vec<_> = (0..1000)
            .map(|i| many.insert(t0 + Duration::from_secs(i), None))
            .collect();
        for &id in &ids[..600] {
            many.cancel(id);
        }
        assert_eq!(many.len(), 400);
        assert!(
            many.heap.len() <= 2 * 400 + 1,
            "heap kept {}",
            many.heap.len()
        );
        assert!(timers.heap.len() <= 130, "heap kept {}", timers.heap.len());
        let mut small = Timers::<()>::default();
        for _ in 0..60 {
            let id = small.insert(t0, None);
            small.cancel(id);
        }
        assert_eq!(small.heap.len(), 60, "64 entries or fewer: left alone");
    }
}
