//! The receive buffers the kernel picks from: a provided-buffer ring
//! (`IORING_REGISTER_PBUF_RING`, Linux 5.19).
//!
//! A multishot receive names no buffer of its own. When bytes arrive the
//! kernel takes the next buffer from this ring, fills it and says which in
//! the completion; the driver lends the buffer to its connection until the
//! loop has read it (or copies it out before the next wait). So a
//! connection that is not receiving holds no buffer, and the ring's few
//! hundred kilobytes serve every connection of a loop.
//! Not all of them circulate: 64 at first, twice as many each time a
//! receive runs dry, half again once the need has passed.
//!
//! Where the kernel can (6.10), a receive takes a *bundle*: as many
//! buffers as the bytes waiting fill, in one pass through TCP's receive
//! path, and one completion that names the first. The others are the
//! ring's next entries, in order, so the ring remembers which buffer it
//! put in each entry.

use std::alloc::{self, Layout};
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

/// The buffer group the receives name.
pub(super) const GROUP: u16 = 0;

/// Buffers in the ring (a power of two, as the kernel requires).
pub(super) const COUNT: u16 = 512;

/// Bytes in each: a completion carries at most this many.
pub(super) const SIZE: usize = 4096;

/// Buffers the ring starts with in circulation (256 KiB). The rest are
/// held back until a receive runs dry: the kernel takes buffers in ring
/// order, so every buffer in circulation is written in turn, and a
/// smaller set stays in the processor's cache (a fixed set of 128 cost
/// about 5% less CPU per message than 512 with 4 KiB messages at 1 and 50
/// connections); a buffer never needed is never touched, so never
/// resident either. Fewer is dearer: starting (and shrinking) at 16 cost
/// 6 to 15% more there, in receives run dry. A larger ring (4,096) gained
/// nothing at 5,000 connections.
const FIRST_CIRCULATING: u16 = 64;

/// Buffers given back, with none running dry, after which the set in
/// circulation is halved (down to [`FIRST_CIRCULATING`]): a burst's need
/// passes.
const SHRINK_AFTER: u32 = 1 << 16;

/// The ring of buffer descriptions shared with the kernel, and the
/// buffers it describes.
pub(super) struct BufferRing {
    /// `count` entries, page-aligned; the first entry's last field is the
    /// ring's tail, which only this side writes.
    entries: NonNull<BufRingEntry>,
    /// `count * SIZE` bytes.
    memory: NonNull<u8>,
    /// Buffers in the ring: [`COUNT`], fewer in tests.
    count: u16,
    /// The tail as this side last published it.
    tail: u16,
    /// The buffer put in each entry of the ring, by entry.
    in_entry: Vec<u16>,
    /// The entry each buffer was last put in, by buffer.
    entry_of: Vec<u16>,
    /// Buffers held back from circulation, the lowest last.
    held_back: Vec<u16>,
    /// How many buffers are to be in circulation (in the ring, or filled
    /// and not yet given back).
    circulating: u16,
    /// Buffers given back since one last ran dry (or the set shrank).
    given_since_dry: u32,
    /// [`SHRINK_AFTER`], fewer in tests.
    pub(super) shrink_after: u32,
}

impl BufferRing {
    /// Allocates `count` buffers (a power of two; [`COUNT`] but in tests),
    /// fills the ring with all of them and registers it with `ring`.
    ///
    /// # Errors
    ///
    /// The kernel refused the ring (older than 5.19), or memory ran out.
    pub(super) fn register(ring: &IoUring, count: u16) -> io::Result<BufferRing> {
        assert!(count.is_power_of_two(), "the kernel takes a power of two");
        let entries = alloc_zeroed(entries_layout(count))?.cast::<BufRingEntry>();
        let memory = match alloc_zeroed(memory_layout(count)) {
            Ok(memory) => memory,
            Err(e) => {
                // SAFETY: allocated just above with this layout, not shared.
                unsafe { alloc::dealloc(entries.as_ptr().cast(), entries_layout(count)) };
                return Err(e);
            }
        };
        let mut buffers = BufferRing {
            entries,
            memory,
            count,
            tail: 0,
            in_entry: vec![0; usize::from(count)],
            entry_of: vec![0; usize::from(count)],
            held_back: Vec::new(),
            circulating: count.min(FIRST_CIRCULATING),
            given_since_dry: 0,
            shrink_after: SHRINK_AFTER,
        };
        for id in 0..buffers.circulating {
            buffers.publish(id);
        }
        buffers.held_back = (buffers.circulating..count).rev().collect();
        // SAFETY: `entries` is page-aligned, `count` entries long, and
        // lives until `self` is dropped, which happens only after the ring
        // that uses it (the backend declares its ring first, and waits for
        // its entries before either goes).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                entries.as_ptr() as u64,
                count,
                GROUP,
                0,
            )?
        };
        Ok(buffers)
    }

    /// The first `len` bytes the kernel wrote into buffer `id`.
    ///
    /// The caller passes the buffer id and length of a completion: until
    /// [`give_back`](BufferRing::give_back) returns it, the kernel does
    /// not write that buffer again.
    pub(super) fn bytes(&self, id: u16, len: usize) -> &[u8] {
        let id = usize::from(id % self.count);
        let len = len.min(SIZE);
        // SAFETY: buffer `id` is `SIZE` bytes inside `memory`; the kernel
        // filled its first `len` bytes and owns it no more (it is out of
        // the ring until given back), so nothing writes it while read.
        unsafe { std::slice::from_raw_parts(self.memory.as_ptr().add(id * SIZE), len) }
    }

    /// The buffers a receive of `len` bytes filled, the first of them
    /// `first` (as its completion says), in order, each with the bytes it
    /// holds: one, or a bundle of the ring's entries that followed it.
    /// Asked before any of them is given back (which reuses entries).
    pub(super) fn filled(&self, first: u16, len: usize) -> impl Iterator<Item = (u16, usize)> + '_ {
        let start = self.entry_of[usize::from(first % self.count)];
        let mask = self.count - 1;
        (0..len.div_ceil(SIZE)).map(move |k| {
            let entry = start.wrapping_add(k as u16) & mask;
            let id = self.in_entry[usize::from(entry)];
            (id, (len - k * SIZE).min(SIZE))
        })
    }

    /// Puts buffer `id` back in the ring for the kernel to fill again, or
    /// holds it back if more are in circulation than wanted.
    pub(super) fn give_back(&mut self, id: u16) {
        let id = id % self.count;
        self.given_since_dry += 1;
        if self.given_since_dry >= self.shrink_after {
            self.given_since_dry = 0;
            self.circulating = (self.circulating / 2).max(self.count.min(FIRST_CIRCULATING));
        }
        let in_circulation = self.count - self.held_back.len() as u16; // at most count
        if in_circulation > self.circulating {
            self.held_back.push(id);
            return;
        }
        self.publish(id);
    }

    /// A receive ran dry: twice as many buffers go into circulation (all
    /// of them at most).
    pub(super) fn ran_dry(&mut self) {
        self.given_since_dry = 0;
        self.circulating = self.circulating.saturating_mul(2).min(self.count);
        let in_circulation = self.count - self.held_back.len() as u16;
        for _ in in_circulation..self.circulating {
            let Some(id) = self.held_back.pop() else {
                break;
            };
            self.publish(id);
        }
    }

    /// Buffers in circulation now, and how many are wanted there.
    #[cfg(test)]
    pub(super) fn circulation(&self) -> (u16, u16) {
        (self.count - self.held_back.len() as u16, self.circulating)
    }

    /// Writes buffer `id` into the ring's next entry and publishes it.
    fn publish(&mut self, id: u16) {
        let at = usize::from(self.tail % self.count);
        // The entries of a bundle not yet read are never written here
        // before it is: they are out of the ring with their buffers, and
        // the buffers in circulation are no more than the ring's entries.
        self.in_entry[at] = id;
        self.entry_of[usize::from(id)] = at as u16; // below `count`, a u16

        // SAFETY: `at` is below `count`. The kernel reads only the entries
        // between its head and the published tail; this one is past the
        // tail until the store below publishes it.
        unsafe {
            let entry = &mut *self.entries.as_ptr().add(at);
            entry.set_addr(self.memory.as_ptr().add(usize::from(id) * SIZE) as u64);
            entry.set_len(SIZE as u32);
            entry.set_bid(id);
        }
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail field of the first entry, aligned for a u16 and
        // shared with the kernel, which reads it: published with release
        // ordering so that the entry written above is seen first.
        unsafe {
            let tail = BufRingEntry::tail(self.entries.as_ptr()) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

impl std::fmt::Debug for BufferRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferRing")
            .field("tail", &self.tail)
            .finish()
    }
}

impl Drop for BufferRing {
    fn drop(&mut self) {
        // SAFETY: both were allocated with these layouts in `register`,
        // and the ring that read them is gone (see `register`).
        unsafe {
            alloc::dealloc(self.entries.as_ptr().cast(), entries_layout(self.count));
            alloc::dealloc(self.memory.as_ptr(), memory_layout(self.count));
        }
    }
}

fn entries_layout(count: u16) -> Layout {
    let size = usize::from(count) * std::mem::size_of::<BufRingEntry>();
    Layout::from_size_align(size, 4096).expect("a page-aligned layout")
}

fn memory_layout(count: u16) -> Layout {
    Layout::from_size_align(usize::from(count) * SIZE, 4096).expect("a page-aligned layout")
}

fn alloc_zeroed(layout: Layout) -> io::Result<NonNull<u8>> {
    // SAFETY: both layouts have a non-zero size.
    NonNull::new(unsafe { alloc::alloc_zeroed(layout) })
        .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))
}
