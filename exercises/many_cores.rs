//! Your answer to the exercise of `book/src/many-cores.md`.
//!
//! > One reactor per core. *Exercise:* run two loops on one address with a
//! > `Group`, each answering `loop N` (its index) to every line, and check
//! > that the connections are spread over both. The factory runs on each
//! > loop's own thread, so each handler knows its loop and shares nothing.
//!
//! Replace each `todo!()`: the signatures are what the tests call. A
//! type's fields are the book's solution's, a suggestion; change them as
//! you like. Then check it with `cargo xtask exercises many_cores`.

#![allow(unused_imports, unused_variables, dead_code)]

use super::*;

pub fn start_two_loops() -> std::io::Result<Group> {
    todo!()
}
