//! Your answer to the exercise of `book/src/seed-flaws.md`.
//!
//! > What goes wrong in the seed. *Exercise:* the seed keeps `outputs` (a
//! > list with a socket once per chunk) and `message` (a dict of lists
//! > answered with `pop()`), and crashes with `KeyError` when a client leaves
//! > with an answer due. Write the bookkeeping right, as one type: answers
//! > oldest first, a connection at most once in the writable set, and a
//! > departed connection forgotten everywhere.
//!
//! Replace each `todo!()`: the signatures are what the tests call. A
//! type's fields are the book's solution's, a suggestion; change them as
//! you like. Then check it with `cargo xtask exercises seed_flaws`.

#![allow(unused_imports, unused_variables, dead_code)]

use super::*;

pub type Conn = u32;

#[derive(Default)]
pub struct Outbox {
    // Your fields: the seed's `message` dict and `outputs` list, without
    // their flaws.
}

impl Outbox {
    pub fn received(&mut self, conn: Conn, chunk: &[u8]) {
        todo!()
    }

    /// The next answer for a writable connection; `None` for one with
    /// nothing due or that has left (the seed's `KeyError`).
    pub fn next_answer(&mut self, conn: Conn) -> Option<Vec<u8>> {
        todo!()
    }

    /// The client left: drop what was due to it, and its place in
    /// `writable`, together (the seed forgets the first and not the second).
    pub fn left(&mut self, conn: Conn) {
        todo!()
    }

    pub fn writable(&self) -> &[Conn] {
        todo!()
    }
}
