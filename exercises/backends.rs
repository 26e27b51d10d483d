//! Your answer to the exercise of `book/src/backends.md`.
//!
//! > Backends. *Exercise:* the same question as `select`, asked of
//! > `poll(2)`: given descriptors and a timeout, which are readable? poll
//! > takes an array of `pollfd`, so it has no FD_SETSIZE: show it watching a
//! > descriptor numbered above 1,024, which `select` cannot.
//!
//! Replace each `todo!()`: the signatures are what the tests call. A
//! type's fields are the book's solution's, a suggestion; change them as
//! you like. Then check it with `cargo xtask exercises backends`.

#![allow(unused_imports, unused_variables, dead_code)]

use super::*;

pub fn readable(fds: &[RawFd], timeout: Duration) -> io::Result<Vec<RawFd>> {
    todo!()
}
