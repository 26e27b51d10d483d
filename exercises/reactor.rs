//! Your answer to the exercise of `book/src/reactor.md`.
//!
//! > The reactor. *Exercise:* a server that answers each line with its
//! > length: a handler, a `Lines` codec, `Reactor::listen`, and `run` on a
//! > thread of its own, stopped from outside through a `Handle`.
//!
//! Replace each `todo!()`: the signatures are what the tests call. A
//! type's fields are the book's solution's, a suggestion; change them as
//! you like. Then check it with `cargo xtask exercises reactor`.

#![allow(unused_imports, unused_variables, dead_code)]

use super::*;

pub fn answer_with_length(cx: &mut Context<'_>, conn: ConnId, line: &[u8]) {
    todo!()
}

/// Starts the server on `addr` on a thread of its own; returns where it
/// listens, a handle to stop it, and the thread, which ends with the loop.
pub fn start(addr: &str) -> io::Result<(SocketAddr, Handle, JoinHandle<io::Result<()>>)> {
    todo!()
}
