//! Your answer to the exercise of `book/src/seed-map.md`.
//!
//! > The seed notes, concept by concept. *Exercise:* Python's
//! > `threading.Event`: `set`, `clear`, `is_set`, and `wait(timeout)`, which
//! > returns `true` as soon as the flag is set, or `false` when the timeout
//! > passes first. A `Mutex<bool>` and a `Condvar`.
//!
//! Replace each `todo!()`: the signatures are what the tests call. A
//! type's fields are the book's solution's, a suggestion; change them as
//! you like. Then check it with `cargo xtask exercises seed_map`.

#![allow(unused_imports, unused_variables, dead_code)]

use super::*;

#[derive(Default)]
pub struct Event {
    // Your fields: a flag, and a way to wake whoever waits for it.
}

impl Event {
    pub fn set(&self) {
        todo!()
    }

    pub fn clear(&self) {
        todo!()
    }

    pub fn is_set(&self) -> bool {
        todo!()
    }

    /// `true` once the flag is set; `false` if `timeout` passes first.
    pub fn wait(&self, timeout: Duration) -> bool {
        todo!()
    }
}
