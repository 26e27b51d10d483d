//! Buffers lent to connections while they have bytes in flight.
//!
//! An idle connection holds no buffer at all: one is taken from this pool when
//! bytes arrive (or an answer is queued) and given back once drained. Reuse
//! keeps the steady path free of `malloc`, and of the kernel's zeroing of
//! fresh pages. The pool keeps as many buffers of each kind as were lent at
//! once lately (at least `Config::pooled_buffers`), so 5,000 busy
//! connections reuse 5,000 buffers turn after turn; once demand falls, what
//! it keeps halves each second down to what the last second needed, and so
//! to the floor, so a burst does not pin its memory for good. Buffers grown past `LARGEST_KEPT` are never kept.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::conn::QueuedFrame;

/// A read buffer and the queue of messages cut from it travel together.
type Inbound = (Vec<u8>, VecDeque<QueuedFrame>);

/// The largest buffer the pool keeps: one grown for a huge message is
/// freed instead. 64 KiB, the default read budget: what a busy stream fills.
const LARGEST_KEPT: usize = 64 * 1024;

/// How often the number of buffers kept follows demand down.
const DECAY_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(crate) struct BufferPool {
    inbound: Vec<Inbound>,
    outbound: Vec<VecDeque<u8>>,
    /// Buffers kept per kind at least (`Config::pooled_buffers`).
    keep: usize,
    inbound_demand: Demand,
    outbound_demand: Demand,
    last_decay: Option<Instant>,
}

/// Buffers of one kind lent out now, and the most lent at once lately.
#[derive(Debug, Default)]
struct Demand {
    lent: usize,
    /// What the pool keeps room for: the most lent at once, followed down
    /// by `decay`.
    peak: usize,
    /// The most lent at once since the last `decay`.
    recent: usize,
}

impl Demand {
    fn lend(&mut self) {
        self.lent += 1;
        self.peak = self.peak.max(self.lent);
        self.recent = self.recent.max(self.lent);
    }

    fn take_back(&mut self) {
        self.lent = self.lent.saturating_sub(1);
    }

    /// How many buffers of this kind the pool keeps.
    fn kept(&self, floor: usize) -> usize {
        floor.max(self.peak)
    }

    /// Halves the remembered peak, but never below what the last period
    /// needed at once: under steady load, where the demand peaks every
    /// turn and ebbs between, halving on the peak alone freed half the
    /// buffers each second only for the next turn to allocate (and the
    /// kernel to zero) them again.
    fn decay(&mut self) {
        self.peak = self.recent.max(self.peak / 2);
        self.recent = self.lent;
    }

    /// Starts a period without decaying: what came before is forgotten.
    fn start_period(&mut self) {
        self.recent = self.lent;
    }
}

impl BufferPool {
    pub(crate) fn new(keep: usize) -> BufferPool {
        BufferPool {
            inbound: Vec::new(),
            outbound: Vec::new(),
            keep,
            inbound_demand: Demand::default(),
            outbound_demand: Demand::default(),
            last_decay: None,
        }
    }

    /// A read buffer and an empty message queue. A new buffer is empty:
    /// the connection initialises (zeroes) it as far as its reads need, once;
    /// a pooled one comes back with what it had initialised.
    pub(crate) fn take_inbound(&mut self) -> Inbound {
        self.inbound_demand.lend();
        self.inbound.pop().unwrap_or_default()
    }

    /// Takes back a read buffer and its (emptied) message queue. Empty
    /// placeholders (never lent: a lent buffer always has capacity) are
    /// ignored, so callers need not check what they hold.
    pub(crate) fn give_inbound(&mut self, buf: Vec<u8>, mut frames: VecDeque<QueuedFrame>) {
        if buf.capacity() == 0 {
            return;
        }
        self.inbound_demand.take_back();
        // A buffer grown for one huge message is not worth keeping.
        if self.inbound.len() < self.inbound_demand.kept(self.keep) && buf.len() <= LARGEST_KEPT {
            frames.clear();
            self.inbound.push((buf, frames));
        }
    }

    /// A write buffer. New ones start at 1 KiB, enough for the usual
    /// answer; a bigger one grows the ring, and keeps its size in the pool.
    pub(crate) fn take_outbound(&mut self) -> VecDeque<u8> {
        self.outbound_demand.lend();
        self.outbound
            .pop()
            .unwrap_or_else(|| VecDeque::with_capacity(1024))
    }

    pub(crate) fn give_outbound(&mut self, mut buf: VecDeque<u8>) {
        if buf.capacity() == 0 {
            return;
        }
        self.outbound_demand.take_back();
        if self.outbound.len() < self.outbound_demand.kept(self.keep)
            && buf.capacity() <= LARGEST_KEPT
        {
            buf.clear();
            self.outbound.push(buf);
        }
    }

    /// Once a second, lets the number of buffers kept follow demand down
    /// (halving the remembered peak, down to what the last second needed)
    /// and frees what is now beyond it.
    pub(crate) fn decay(&mut self, now: Instant) {
        let Some(last) = self.last_decay else {
            self.last_decay = Some(now);
            self.inbound_demand.start_period();
            self.outbound_demand.start_period();
            return;
        };
        if now.saturating_duration_since(last) < DECAY_EVERY {
            return;
        }
        self.last_decay = Some(now);
        self.inbound_demand.decay();
        self.outbound_demand.decay();
        self.inbound.truncate(self.inbound_demand.kept(self.keep));
        self.outbound.truncate(self.outbound_demand.kept(self.keep));
    }

    /// Buffers of each kind waiting in the pool (inbound, outbound).
    #[cfg(test)]
    pub(crate) fn pooled(&self) -> (usize, usize) {
        (self.inbound.len(), self.outbound.len())
    }
}

/// Appends `bytes` to an output ring.
///
/// The copy is written as a loop over the bytes, which the compiler turns
/// into vector moves, rather than as a `memcpy` call. glibc's `memcpy` uses
/// `rep movsb` for copies of a few KiB, and on AMD Zen 3 and 4 that
/// instruction runs an order of magnitude slower when source and destination
/// sit at nearly the same offset within a 4 KiB page (glibc bug 30994).
/// Read buffers and output rings of the same size are allocated side by
/// side, so an answer copied from one into the other meets that case: on
/// such a machine, echoing 4 KiB messages spent a third of the server's CPU
/// time in that one copy (about 2.5 GB/s, against 29 to 39 GB/s for the
/// loop).
pub(crate) fn append_to_ring(ring: &mut VecDeque<u8>, bytes: &[u8]) {
    ring.extend(bytes.iter().copied());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lends `count` buffers of each kind at once, then takes them all back.
    fn burst(pool: &mut BufferPool, count: usize) {
        let lent: Vec<_> = (0..count)
            .map(|_| {
                let (mut inbound, frames) = pool.take_inbound();
                inbound.resize(1024, 0); // what a read does to a fresh one
                (inbound, frames, pool.take_outbound())
            })
            .collect();
        for (inbound, frames, outbound) in lent {
            pool.give_inbound(inbound, frames);
            pool.give_outbound(outbound);
        }
    }

    #[test]
    fn the_pool_keeps_what_was_lent_at_once_then_follows_demand_down() {
        let mut pool = BufferPool::new(4);
        let start = Instant::now();
        // 3,000 buffers lent at once: all 3,000 are kept for the next burst,
        // not only the floor of 4 (the rest would be freed and allocated,
        // their pages zeroed, turn after turn).
        burst(&mut pool, 3000);
        assert_eq!(pool.pooled(), (3000, 3000));
        burst(&mut pool, 3000);
        assert_eq!(pool.pooled(), (3000, 3000), "the second burst reuses them");
        // Demand falls: what is kept halves each second, down to the floor.
        pool.decay(start + DECAY_EVERY); // the first call only starts the clock
        assert_eq!(pool.pooled(), (3000, 3000));
        pool.decay(start + 2 * DECAY_EVERY);
        assert_eq!(pool.pooled(), (1500, 1500));
        pool.decay(start + 2 * DECAY_EVERY); // not a second later: no change
        assert_eq!(pool.pooled(), (1500, 1500));
        for second in 3..20 {
            pool.decay(start + second * DECAY_EVERY);
        }
        assert_eq!(pool.pooled(), (4, 4), "down to the floor");
    }

    #[test]
    fn steady_bursts_keep_their_buffers_from_second_to_second() {
        let mut pool = BufferPool::new(4);
        let start = Instant::now();
        pool.decay(start); // starts the clock

        // Every second brings the same bursts, with nothing lent between
        // them when the second turns: the pool keeps what a burst needs.
        for second in 1..6 {
            burst(&mut pool, 2000);
            pool.decay(start + second * DECAY_EVERY);
            assert_eq!(pool.pooled(), (2000, 2000), "second {second}");
        }
        // The bursts stop: from then on, halving.
        pool.decay(start + 6 * DECAY_EVERY);
        assert_eq!(pool.pooled(), (1000, 1000));
    }

    /// A buffer grown past 64 KiB (for one huge message) is freed, one of
    /// exactly 64 KiB kept; and the pool never keeps more buffers than it
    /// has room for, whatever it is given back.
    #[test]
    fn the_pool_keeps_buffers_up_to_64_kib_and_no_more_than_its_count() {
        let mut pool = BufferPool::new(2);
        let (mut kept, frames) = pool.take_inbound();
        let (mut grown, more_frames) = pool.take_inbound();
        kept.resize(64 * 1024, 0);
        grown.resize(64 * 1024 + 1, 0);
        pool.give_inbound(kept, frames);
        pool.give_inbound(grown, more_frames);
        assert_eq!(pool.pooled().0, 1, "the grown one is freed");
        let small = VecDeque::with_capacity(64 * 1024);
        let big = VecDeque::with_capacity(64 * 1024 + 1);
        assert_eq!(small.capacity(), 64 * 1024);
        let (a, b) = (pool.take_outbound(), pool.take_outbound());
        drop((a, b));
        pool.give_outbound(small);
        pool.give_outbound(big);
        assert_eq!(pool.pooled().1, 1, "the big ring is freed");
        // Room for one (the floor, and one lent at once): a second given
        // back is freed, not kept.
        let mut floor = BufferPool::new(1);
        let (buf, frames) = floor.take_inbound();
        let mut buf = buf;
        buf.resize(64, 0);
        floor.give_inbound(buf, frames);
        floor.give_inbound(vec![0; 64], VecDeque::new());
        assert_eq!(floor.pooled().0, 1, "one lent at once, one kept");
        let ring = floor.take_outbound();
        floor.give_outbound(ring);
        floor.give_outbound(VecDeque::with_capacity(16));
        assert_eq!(floor.pooled().1, 1);
    }

    #[test]
    fn empty_placeholders_are_not_counted_as_returns() {
        let mut pool = BufferPool::new(0);
        let (mut inbound, frames) = pool.take_inbound();
        inbound.resize(64, 0);
        // Giving back nothing (an idle connection's empty buffer) must not
        // make the pool think fewer buffers are out than are.
        pool.give_inbound(Vec::new(), VecDeque::new());
        pool.give_outbound(VecDeque::new());
        assert_eq!(pool.inbound_demand.lent, 1);
        pool.give_inbound(inbound, frames);
        assert_eq!(pool.inbound_demand.lent, 0);
        assert_eq!(pool.pooled(), (1, 0), "kept: one was lent at once");
    }

    #[test]
    fn append_to_ring_keeps_order_across_the_wrap() {
        let mut ring = VecDeque::with_capacity(8);
        append_to_ring(&mut ring, b"abcdef");
        ring.drain(..4);
        // Head is now past the middle: the next append wraps around.
        append_to_ring(&mut ring, b"ghijkl");
        append_to_ring(&mut ring, b"");
        assert_eq!(ring.iter().copied().collect::<Vec<u8>>(), b"efghijkl");
        let (front, back) = ring.as_slices();
        assert_eq!([front, back].concat(), b"efghijkl");
    }
}
