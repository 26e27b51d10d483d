//! Your answer to the exercise of `book/src/select-literal.md`.
//!
//! > The seed's select() server, line by line. *Exercise:* the heart of the
//! > seed is one call, `select.select(inputs, [], [], timeout)`. Write it on
//! > `libc::select`: given descriptors and a timeout, return those that are
//! > readable. Refuse a descriptor `select` cannot watch (FD_SETSIZE) with an
//! > error instead of writing past the end of the set.
//!
//! Replace each `todo!()`: the signatures are what the tests call. A
//! type's fields are the book's solution's, a suggestion; change them as
//! you like. Then check it with `cargo xtask exercises select_literal`.

#![allow(unused_imports, unused_variables, dead_code)]

use super::*;

pub fn readable(fds: &[RawFd], timeout: Duration) -> io::Result<Vec<RawFd>> {
    todo!()
}
