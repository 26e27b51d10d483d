//! The keyspace: strings, lists, sets, hashes and sorted sets, with expiry
//! checked lazily on every access and swept by a periodic timer (as Redis
//! does, lazily plus `activeExpireCycle`).
//!
//! Deadlines are Unix times in milliseconds, as Redis keeps them: `EXPIREAT`
//! and `PXAT` name such times, and any `i64` one is a valid deadline (no
//! `Instant` arithmetic to overflow).

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};

/// A sorted-set score, ordered totally (so it can sit in a `BTreeSet`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score(pub f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Score) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Score) -> Ordering {
        // -0 and 0 are one score, as for Redis's `<`; NaN is never stored.
        if self.0 == other.0 {
            Ordering::Equal
        } else {
            self.0.total_cmp(&other.0)
        }
    }
}

#[derive(Debug, Default)]
pub struct SortedSet {
    pub by_score: BTreeSet<(Score, Vec<u8>)>,
    pub scores: HashMap<Vec<u8>, Score>,
}

impl SortedSet {
    /// The member's score, if it is in the set.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).map(|score| score.0)
    }

    /// Adds `member`, or moves it to `score`.
    pub fn insert(&mut self, member: &[u8], score: Score) {
        if let Some(old) = self.scores.insert(member.to_vec(), score) {
            self.by_score.remove(&(old, member.to_vec()));
        }
        self.by_score.insert((score, member.to_vec()));
    }

    /// Takes out the member with the lowest score (the first by bytes
    /// among equal scores, as Redis orders them).
    pub fn pop_min(&mut self) -> Option<(Score, Vec<u8>)> {
        let (score, member) = self.by_score.pop_first()?;
        self.scores.remove(&member);
        Some((score, member))
    }
}

#[derive(Debug)]
pub enum Value {
    Str(Vec<u8>),
    List(VecDeque<Vec<u8>>),
    Set(HashSet<Vec<u8>>),
    Hash(HashMap<Vec<u8>, Vec<u8>>),
    Zset(SortedSet),
}

#[derive(Debug)]
struct Entry {
    value: Value,
    /// Unix time in milliseconds.
    expires_at: Option<i64>,
}

/// The keys and their values.
#[derive(Debug, Default)]
pub struct Db {
    entries: HashMap<Vec<u8>, Entry>,
    /// Keys deleted for having passed their deadline (INFO's
    /// `expired_keys`).
    pub expired: u64,
    /// Deadlines of keys with a time to live, earliest first. An entry is
    /// only a hint: the key's own deadline is checked when it comes up.
    deadlines: BinaryHeap<Reverse<(i64, Vec<u8>)>>,
}

impl Db {
    /// The live value at `key`, a key past its deadline being deleted first.
    pub fn get(&mut self, key: &[u8], now: i64) -> Option<&mut Value> {
        self.expire_if_due(key, now);
        self.entries.get_mut(key).map(|e| &mut e.value)
    }

    fn expire_if_due(&mut self, key: &[u8], now: i64) {
        if self
            .entries
            .get(key)
            .and_then(|e| e.expires_at)
            .is_some_and(|at| at <= now)
        {
            self.entries.remove(key);
            self.expired += 1;
        }
    }

    /// How many keys have a time to live (INFO's `expires`).
    pub fn with_deadline(&self) -> usize {
        self.entries
            .values()
            .filter(|e| e.expires_at.is_some())
            .count()
    }

    /// Stores `value` at `key`, with no time to live.
    pub fn set(&mut self, key: &[u8], value: Value) {
        self.entries.insert(
            key.to_vec(),
            Entry {
                value,
                expires_at: None,
            },
        );
    }

    /// Replaces the value at `key`, keeping its time to live (`KEEPTTL`).
    pub fn replace_keeping_ttl(&mut self, key: &[u8], value: Value) {
        match self.entries.get_mut(key) {
            Some(entry) => entry.value = value,
            None => self.set(key, value),
        }
    }

    /// Takes `key`'s time to live away; `false` if it had none (or no key).
    pub fn persist(&mut self, key: &[u8], now: i64) -> bool {
        self.expire_if_due(key, now);
        self.entries
            .get_mut(key)
            .and_then(|entry| entry.expires_at.take())
            .is_some()
    }

    /// The value at `key`, created with `make` if missing.
    pub fn get_or_insert(
        &mut self,
        key: &[u8],
        now: i64,
        make: impl FnOnce() -> Value,
    ) -> &mut Value {
        self.expire_if_due(key, now);
        &mut self
            .entries
            .entry(key.to_vec())
            .or_insert_with(|| Entry {
                value: make(),
                expires_at: None,
            })
            .value
    }

    pub fn remove(&mut self, key: &[u8], now: i64) -> bool {
        self.expire_if_due(key, now);
        self.entries.remove(key).is_some()
    }

    /// Gives `key` a deadline; `false` if there is no such key.
    pub fn expire_at(&mut self, key: &[u8], at: i64, now: i64) -> bool {
        self.expire_if_due(key, now);
        let Some(entry) = self.entries.get_mut(key) else {
            return false;
        };
        entry.expires_at = Some(at);
        self.deadlines.push(Reverse((at, key.to_vec())));
        true
    }

    /// The key's deadline: `Ok(None)` for none, `Err(())` for no such key.
    pub fn deadline(&mut self, key: &[u8], now: i64) -> Result<Option<i64>, ()> {
        self.expire_if_due(key, now);
        self.entries.get(key).map(|e| e.expires_at).ok_or(())
    }

    /// Deletes the value if it became empty (an empty list is no list).
    pub fn drop_if_empty(&mut self, key: &[u8]) {
        let empty = match self.entries.get(key).map(|e| &e.value) {
            Some(Value::List(l)) => l.is_empty(),
            Some(Value::Set(s)) => s.is_empty(),
            Some(Value::Hash(h)) => h.is_empty(),
            Some(Value::Zset(z)) => z.scores.is_empty(),
            _ => false,
        };
        if empty {
            self.entries.remove(key);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.deadlines.clear();
    }

    /// Deletes keys past their deadline, `budget` deadlines at most (the
    /// periodic sweep; keys not reached are still deleted when accessed).
    /// Returns how many keys it deleted.
    pub fn sweep(&mut self, now: i64, budget: usize) -> usize {
        let mut deleted = 0;
        for _ in 0..budget {
            let Some(Reverse((at, _))) = self.deadlines.peek() else {
                break;
            };
            if *at > now {
                break;
            }
            let Some(Reverse((at, key))) = self.deadlines.pop() else {
                break;
            };
            // Only if the key still has this deadline (it may have been
            // set again, or given another).
            if self.entries.get(&key).and_then(|e| e.expires_at) == Some(at) {
                self.entries.remove(&key);
                self.expired += 1;
                deleted += 1;
            }
        }
        deleted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_keys_are_gone_lazily_and_by_the_sweep() {
        let t0 = 1_700_000_000_000;
        let mut db = Db::default();
        db.set(b"a", Value::Str(b"1".to_vec()));
        db.set(b"b", Value::Str(b"2".to_vec()));
        db.expire_at(b"a", t0 + 10, t0);
        db.expire_at(b"b", t0 + 10, t0);
        let later = t0 + 20;
        assert!(db.get(b"a", later).is_none(), "lazily expired");
        assert_eq!(db.len(), 1);
        assert_eq!(db.sweep(later, 100), 1, "the sweep deletes b");
        assert_eq!(db.len(), 0);
    }

    #[test]
    fn a_key_set_again_loses_its_old_deadline() {
        let t0 = 1_700_000_000_000;
        let mut db = Db::default();
        db.set(b"k", Value::Str(b"old".to_vec()));
        db.expire_at(b"k", t0 + 10, t0);
        db.set(b"k", Value::Str(b"new".to_vec()));
        assert_eq!(db.sweep(t0 + 1000, 100), 0);
        assert!(db.get(b"k", t0 + 1000).is_some());
    }
}
