//! Your answer to the exercise of `book/src/pools.md`.
//!
//! > Pools. *Exercise:* the notes' `pool.apply_async(work, callback=cb)`,
//! > where `cb` runs in the main process: a server that counts the words of
//! > each line on the worker pool (slow work, off the loop) and answers the
//! > count from the callback, on the loop thread, in the order the lines
//! > came, however the jobs finish.
//!
//! Replace each `todo!()`: the signatures are what the tests call. A
//! type's fields are the book's solution's, a suggestion; change them as
//! you like. Then check it with `cargo xtask exercises pools`.

#![allow(unused_imports, unused_variables, dead_code)]

use super::*;

pub fn count_words_on_the_pool(cx: &mut Context<'_>, conn: ConnId, line: &[u8]) {
    todo!()
}

pub fn word_count_config() -> Config {
    todo!()
}
