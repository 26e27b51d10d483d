//! Your answer to the exercise of `book/src/start-here.md`.
//!
//! > Start here. *Exercise:* write the seed's client in Rust: connect, read
//! > the greeting, then send each message and wait for its answer before
//! > sending the next. Waiting matters: the seed's server answers whatever
//! > one `recv(1024)` returned, so two messages sent back to back may come
//! > back as one answer.
//!
//! Replace each `todo!()`: the signatures are what the tests call. A
//! type's fields are the book's solution's, a suggestion; change them as
//! you like. Then check it with `cargo xtask exercises start_here`.

#![allow(unused_imports, unused_variables, dead_code)]

use super::*;

pub const GREETING: &[u8] = b"Hello client-side";

/// Talks to a server of the seed's protocol: returns the greeting and one
/// answer per message, in order.
pub fn talk(addr: SocketAddr, messages: &[&str]) -> io::Result<(Vec<u8>, Vec<String>)> {
    todo!()
}
