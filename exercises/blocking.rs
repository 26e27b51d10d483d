//! Your answer to the exercise of `book/src/blocking.md`.
//!
//! > A blocking server. *Exercise:* write socketserver's `handle_request()`:
//! > accept one client, serve it until it leaves, and return, so that the
//! > caller decides whether to serve another (`serve_forever` is a loop of
//! > it).
//!
//! Replace each `todo!()`: the signatures are what the tests call. A
//! type's fields are the book's solution's, a suggestion; change them as
//! you like. Then check it with `cargo xtask exercises blocking`.

#![allow(unused_imports, unused_variables, dead_code)]

use super::*;

/// Serves exactly one client of the seed's protocol, then returns.
pub fn handle_request(listener: &TcpListener) -> io::Result<()> {
    todo!()
}
