//! The solution of the exercise of `book/src/seed-map.md`, which the book
//! shows folded; `tests/exercises/seed_map.rs` holds it to the exercise.

use super::*;

// ANCHOR: solution
#[derive(Default)]
pub struct Event {
    pub flag: Mutex<bool>,
    pub changed: Condvar,
}

impl Event {
    pub fn set(&self) {
        *self.flag.lock().unwrap() = true;
        self.changed.notify_all(); // every waiter wakes, as in Python
    }

    pub fn clear(&self) {
        *self.flag.lock().unwrap() = false;
    }

    pub fn is_set(&self) -> bool {
        *self.flag.lock().unwrap()
    }

    /// `true` once the flag is set; `false` if `timeout` passes first.
    pub fn wait(&self, timeout: Duration) -> bool {
        let flag = self.flag.lock().unwrap();
        // wait_timeout_while re-checks the flag after every wake-up, so a
        // spurious wake-up does not end the wait early.
        let (flag, _) = self
            .changed
            .wait_timeout_while(flag, timeout, |set| !*set)
            .unwrap();
        *flag
    }
}
// ANCHOR_END: solution
