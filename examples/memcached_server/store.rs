//! The items: values with flags, a cas unique and an expiry time, and the
//! rules memcached 1.6 applies to them (what `add`, `cas`, `incr` and the
//! rest do), bounded in memory.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use selectloop::Bytes;

use crate::protocol::StoreOp;

/// Exptimes up to 30 days are relative; larger ones are Unix times.
const RELATIVE_LIMIT: i64 = 60 * 60 * 24 * 30;

/// What an item costs beyond its key and value, for the memory bound
/// (the map's slot and the item's fields, about as memcached counts its
/// item header).
const ITEM_OVERHEAD: usize = 64;

/// One stored value: a shared buffer, so that a `get` queues it for the
/// client without copying it (and a value replaced meanwhile stays whole
/// for the replies that hold it).
#[derive(Debug)]
pub struct Item {
    pub value: Bytes,
    pub flags: u32,
    pub cas: u64,
    /// When it expires, in the store's milliseconds; `None`: never.
    deadline: Option<u64>,
    /// When it was stored: a delayed `flush_all` drops what is older.
    stored_ms: u64,
}

/// How a storage command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Stored,
    NotStored,
    Exists,
    NotFound,
    OutOfMemory,
}

/// Why `incr`/`decr` did nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithError {
    NotFound,
    NonNumeric,
}

/// The counters `stats` reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    pub cmd_get: u64,
    pub cmd_set: u64,
    pub cmd_touch: u64,
    pub get_hits: u64,
    pub get_misses: u64,
    pub total_items: u64,
    pub expired_unfetched: u64,
}

/// When an item expires, its cas unique then, and its key.
type Expiry = (u64, u64, Box<[u8]>);

/// Every item, by key.
#[derive(Debug)]
pub struct Store {
    items: HashMap<Box<[u8]>, Item>,
    /// Items with an expiry time, soonest first (a stale entry, whose item
    /// was replaced since, is told by its cas unique).
    expiries: BinaryHeap<Reverse<Expiry>>,
    next_cas: u64,
    started: Instant,
    /// Unix time in seconds when the store was made.
    unix_at_start: i64,
    bytes: usize,
    max_bytes: usize,
    /// A delayed `flush_all`: at this time, what was stored before it goes.
    flush_at: Option<u64>,
    /// The time now, in the store's milliseconds: set by [`Store::tick`]
    /// from the loop's clock of the turn, read by every command.
    now: u64,
    pub counters: Counters,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}

impl Store {
    pub fn new(max_bytes: usize) -> Store {
        Store {
            items: HashMap::new(),
            expiries: BinaryHeap::new(),
            next_cas: 0,
            started: Instant::now(),
            unix_at_start: unix_now(),
            bytes: 0,
            max_bytes,
            flush_at: None,
            now: 0,
            counters: Counters::default(),
        }
    }

    /// Sets the store's clock to `now` (the loop's time for this turn:
    /// one reading of the clock a turn, not one a command).
    pub fn tick(&mut self, now: Instant) {
        self.now = now.saturating_duration_since(self.started).as_millis() as u64;
    }

    fn now_ms(&self) -> u64 {
        self.now
    }

    /// Seconds since the store was made (`stats`'s `uptime`).
    pub fn uptime(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Bytes of keys and values held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// When an item stored now with `exptime` expires: `Err` if it is
    /// expired already (a negative exptime, a Unix time past).
    fn deadline(&self, exptime: i64, now: u64) -> Result<Option<u64>, ()> {
        let seconds = match exptime {
            0 => return Ok(None),
            e if e < 0 => return Err(()),
            e if e <= RELATIVE_LIMIT => e,
            unix => unix - (self.unix_at_start + (now / 1000) as i64),
        };
        if seconds <= 0 {
            return Err(());
        }
        Ok(Some(now + seconds as u64 * 1000))
    }

    fn cost(key: &[u8], value: &[u8]) -> usize {
        key.len() + value.len() + ITEM_OVERHEAD
    }

    /// The live item under `key`; an expired or flushed one is removed.
    fn live(&mut self, key: &[u8], now: u64) -> Option<&mut Item> {
        self.apply_flush(now);
        let expired = match self.items.get(key) {
            None => return None,
            Some(item) => item.deadline.is_some_and(|d| d <= now),
        };
        if expired {
            self.remove(key);
            self.counters.expired_unfetched += 1;
            return None;
        }
        self.items.get_mut(key)
    }

    fn remove(&mut self, key: &[u8]) -> Option<Item> {
        let item = self.items.remove(key)?;
        self.bytes -= Self::cost(key, &item.value);
        Some(item)
    }

    /// A delayed flush whose time has come drops what was stored before.
    fn apply_flush(&mut self, now: u64) {
        let Some(at) = self.flush_at.filter(|&at| at <= now) else {
            return;
        };
        self.flush_at = None;
        let mut freed = 0;
        self.items.retain(|key, item| {
            let keep = item.stored_ms >= at;
            if !keep {
                freed += Self::cost(key, &item.value);
            }
            keep
        });
        self.bytes -= freed;
    }

    fn new_cas(&mut self) -> u64 {
        self.next_cas += 1;
        self.next_cas
    }

    /// The item under `key`, for `get`.
    pub fn get(&mut self, key: &[u8]) -> Option<&Item> {
        let now = self.now_ms();
        self.apply_flush(now);
        self.counters.cmd_get += 1;
        let live = match self.items.get(key) {
            Some(item) => item.deadline.is_none_or(|d| d > now),
            None => false,
        };
        if !live {
            if self.remove(key).is_some() {
                self.counters.expired_unfetched += 1;
            }
            self.counters.get_misses += 1;
            return None;
        }
        self.counters.get_hits += 1;
        self.items.get(key)
    }

    /// A storage command, as memcached carries it out.
    pub fn store(
        &mut self,
        op: StoreOp,
        key: &[u8],
        flags: u32,
        exptime: i64,
        value: &[u8],
    ) -> Outcome {
        let now = self.now_ms();
        self.counters.cmd_set += 1;
        let current = self.live(key, now).map(|item| item.cas);
        match (op, current) {
            (StoreOp::Add, Some(_)) => return Outcome::NotStored,
            (StoreOp::Replace | StoreOp::Append | StoreOp::Prepend, None) => {
                return Outcome::NotStored
            }
            (StoreOp::Cas(_), None) => return Outcome::NotFound,
            (StoreOp::Cas(unique), Some(cas)) if unique != cas => return Outcome::Exists,
            _ => {}
        }
        if matches!(op, StoreOp::Append | StoreOp::Prepend) {
            return self.concatenate(op, key, value);
        }
        let Ok(deadline) = self.deadline(exptime, now) else {
            // Stored and expired at once: what was there goes.
            self.remove(key);
            return Outcome::Stored;
        };
        let old_cost = current.map_or(0, |_| Self::cost(key, &self.items[key].value));
        if self.bytes - old_cost + Self::cost(key, value) > self.max_bytes {
            return Outcome::OutOfMemory;
        }
        self.remove(key);
        let cas = self.new_cas();
        self.insert(
            key,
            Item {
                value: Bytes::copy_from_slice(value),
                flags,
                cas,
                deadline,
                stored_ms: now,
            },
        );
        Outcome::Stored
    }

    fn insert(&mut self, key: &[u8], item: Item) {
        self.bytes += Self::cost(key, &item.value);
        self.counters.total_items += 1;
        if let Some(deadline) = item.deadline {
            self.expiries
                .push(Reverse((deadline, item.cas, key.into())));
        }
        self.items.insert(key.into(), item);
    }

    /// `append` or `prepend` to a live item: its flags and expiry stay.
    fn concatenate(&mut self, op: StoreOp, key: &[u8], extra: &[u8]) -> Outcome {
        if self.bytes + extra.len() > self.max_bytes {
            return Outcome::OutOfMemory;
        }
        let cas = self.new_cas();
        let Some(item) = self.items.get_mut(key) else {
            return Outcome::NotStored;
        };
        let (front, back) = if op == StoreOp::Append {
            (&item.value[..], extra)
        } else {
            (extra, &item.value[..])
        };
        item.value = Bytes::from([front, back].concat());
        item.cas = cas;
        self.bytes += extra.len();
        Outcome::Stored
    }

    /// A `set` whose value was too large: memcached drops the old value,
    /// so that a stale one does not outlive the write that failed.
    pub fn refused_set(&mut self, op: StoreOp, key: &[u8]) {
        if op == StoreOp::Set {
            self.remove(key);
        }
    }

    pub fn delete(&mut self, key: &[u8]) -> bool {
        let now = self.now_ms();
        self.live(key, now).is_some() && self.remove(key).is_some()
    }

    /// `incr` (wrapping at 2^64) or `decr` (stopping at 0). A result
    /// shorter than the value it replaces is padded with spaces to the
    /// same length, as memcached rewrites the value in place.
    pub fn arith(&mut self, key: &[u8], incr: bool, delta: u64) -> Result<u64, ArithError> {
        let now = self.now_ms();
        let cas = self.new_cas();
        let item = self.live(key, now).ok_or(ArithError::NotFound)?;
        let current = numeric(&item.value).ok_or(ArithError::NonNumeric)?;
        let result = if incr {
            current.wrapping_add(delta)
        } else {
            current.saturating_sub(delta)
        };
        let mut text = result.to_string().into_bytes();
        let old_len = item.value.len();
        if text.len() < old_len {
            text.resize(old_len, b' ');
        }
        let grown = text.len() - old_len;
        item.value = Bytes::from(text);
        item.cas = cas;
        self.bytes += grown;
        Ok(result)
    }

    pub fn touch(&mut self, key: &[u8], exptime: i64) -> bool {
        let now = self.now_ms();
        self.counters.cmd_touch += 1;
        let deadline = self.deadline(exptime, now);
        let Some(item) = self.live(key, now) else {
            return false;
        };
        match deadline {
            Ok(deadline) => {
                item.deadline = deadline;
                let cas = item.cas;
                if let Some(deadline) = deadline {
                    self.expiries.push(Reverse((deadline, cas, key.into())));
                }
            }
            Err(()) => {
                self.remove(key);
            }
        }
        true
    }

    /// `flush_all [delay]`: everything now, or what was stored before
    /// `delay` seconds from now, once they have passed.
    pub fn flush_all(&mut self, delay: i64) {
        let now = self.now_ms();
        if delay <= 0 {
            self.items.clear();
            self.bytes = 0;
            self.flush_at = None;
        } else {
            self.flush_at = Some(now + delay as u64 * 1000);
        }
    }

    /// Removes up to `budget` items whose time has passed, soonest first.
    pub fn sweep(&mut self, budget: usize) {
        let now = self.now_ms();
        self.apply_flush(now);
        for _ in 0..budget {
            match self.expiries.peek() {
                Some(Reverse((deadline, _, _))) if *deadline <= now => {}
                _ => return,
            }
            let Some(Reverse((deadline, cas, key))) = self.expiries.pop() else {
                return;
            };
            // Only if it is still the item that deadline was set for.
            if self
                .items
                .get(&key)
                .is_some_and(|item| item.cas == cas && item.deadline == Some(deadline))
            {
                self.remove(&key);
            }
        }
    }
}

/// The number a value holds, as `incr` reads it: digits, then nothing but
/// spaces (what an `incr` that shortened it left).
fn numeric(value: &[u8]) -> Option<u64> {
    let digits = value.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || !value[digits..].iter().all(|&b| b == b' ') {
        return None;
    }
    crate::protocol::parse_u64(&value[..digits])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_storage_commands_follow_memcached() {
        let mut store = Store::new(1 << 20);
        // The command, its key, flags and value, and what it should do.
        type Step = (StoreOp, &'static [u8], u32, &'static [u8], Outcome);
        let steps: [Step; 5] = [
            (StoreOp::Add, b"k", 1, b"a", Outcome::Stored),
            (StoreOp::Add, b"k", 1, b"b", Outcome::NotStored),
            (StoreOp::Replace, b"x", 0, b"b", Outcome::NotStored),
            (StoreOp::Append, b"k", 9, b"z", Outcome::Stored),
            (StoreOp::Prepend, b"k", 9, b"<", Outcome::Stored),
        ];
        for (op, key, flags, value, outcome) in steps {
            assert_eq!(store.store(op, key, flags, 0, value), outcome, "{op:?}");
        }
        let item = store.get(b"k").unwrap();
        assert_eq!(
            (&item.value[..], item.flags),
            (&b"<az"[..], 1),
            "flags kept"
        );
        let cas = item.cas;
        assert_eq!(
            store.store(StoreOp::Cas(cas + 1), b"k", 0, 0, b"c"),
            Outcome::Exists
        );
        assert_eq!(
            store.store(StoreOp::Cas(cas), b"k", 0, 0, b"c"),
            Outcome::Stored
        );
        assert_eq!(
            store.store(StoreOp::Cas(1), b"none", 0, 0, b"c"),
            Outcome::NotFound
        );
        assert!(store.delete(b"k"));
        assert!(!store.delete(b"k"));
        assert_eq!(store.bytes(), 0);
    }

    #[test]
    fn incr_wraps_decr_stops_at_zero_and_shorter_results_are_padded() {
        let mut store = Store::new(1 << 20);
        store.store(StoreOp::Set, b"n", 0, 0, b"10");
        assert_eq!(store.arith(b"n", false, 1), Ok(9));
        assert_eq!(store.get(b"n").unwrap().value, &b"9 "[..]);
        assert_eq!(store.arith(b"n", true, 1), Ok(10));
        assert_eq!(store.arith(b"n", false, 100), Ok(0));
        store.store(StoreOp::Set, b"n", 0, 0, b"18446744073709551615");
        assert_eq!(store.arith(b"n", true, 2), Ok(1));
        store.store(StoreOp::Set, b"t", 0, 0, b"ten");
        assert_eq!(store.arith(b"t", true, 1), Err(ArithError::NonNumeric));
        assert_eq!(store.arith(b"none", true, 1), Err(ArithError::NotFound));
    }

    #[test]
    fn expired_and_flushed_items_are_gone() {
        let mut store = Store::new(1 << 20);
        assert_eq!(store.store(StoreOp::Set, b"k", 0, 0, b"v"), Outcome::Stored);
        assert_eq!(
            store.store(StoreOp::Set, b"k", 0, -1, b"v"),
            Outcome::Stored
        );
        assert!(
            store.get(b"k").is_none(),
            "a negative exptime expires at once"
        );
        let long_ago = unix_now() - 10;
        assert_eq!(
            store.store(StoreOp::Set, b"u", 0, long_ago, b"v"),
            Outcome::Stored
        );
        assert!(store.get(b"u").is_none(), "a Unix time in the past");
        store.store(StoreOp::Set, b"a", 0, 100, b"v");
        assert!(store.touch(b"a", -1));
        assert!(store.get(b"a").is_none());
        store.store(StoreOp::Set, b"b", 0, 0, b"v");
        store.flush_all(0);
        assert!(store.get(b"b").is_none());
        assert_eq!((store.len(), store.bytes()), (0, 0));
    }

    #[test]
    fn the_memory_bound_refuses_what_does_not_fit() {
        let mut store = Store::new(2 * ITEM_OVERHEAD + 10);
        let steps: [(&[u8], &[u8], Outcome); 5] = [
            (b"a", b"1234", Outcome::Stored),
            (b"b", b"1234", Outcome::Stored),
            (b"c", b"1", Outcome::OutOfMemory),
            // Replacing a value counts what it frees.
            (b"a", b"123", Outcome::Stored),
            (b"a", b"12345", Outcome::OutOfMemory),
        ];
        for (key, value, outcome) in steps {
            assert_eq!(store.store(StoreOp::Set, key, 0, 0, value), outcome);
        }
    }
}
