//! Your answer to the exercise of `book/src/threads.md`.
//!
//! > Threads. *Exercise:* Python's `JoinableQueue`: `put`, a blocking `get`,
//! > `task_done` after each item is processed, and `join`, which returns once
//! > every item ever put has been marked done (not merely taken). Build it
//! > from a `Mutex` and two `Condvar`s.
//!
//! Replace each `todo!()`: the signatures are what the tests call. A
//! type's fields are the book's solution's, a suggestion; change them as
//! you like. Then check it with `cargo xtask exercises threads`.

#![allow(unused_imports, unused_variables, dead_code)]

use super::*;

pub struct JoinableQueue<T> {
    // Your fields: the items and the count of unfinished ones, behind a
    // `Mutex`, and two `Condvar`s. (`PhantomData` only stands in for
    // them: remove it.)
    pub placeholder: std::marker::PhantomData<T>,
}

impl<T> JoinableQueue<T> {
    pub fn new() -> JoinableQueue<T> {
        todo!()
    }

    pub fn put(&self, item: T) {
        todo!()
    }

    /// Blocks until an item is there.
    pub fn get(&self) -> T {
        todo!()
    }

    pub fn task_done(&self) {
        todo!()
    }

    /// Blocks until every item put has been marked done.
    pub fn join(&self) {
        todo!()
    }
}
