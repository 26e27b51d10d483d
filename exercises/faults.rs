//! Your answer to the exercise of `book/src/faults.md`.
//!
//! > Faults and limits. *Exercise:* lines of at most 32 bytes; a client that
//! > sends a longer one gets `ERR line too long` before the connection
//! > closes, and every other client goes on as if nothing happened.
//!
//! Replace each `todo!()`: the signatures are what the tests call. A
//! type's fields are the book's solution's, a suggestion; change them as
//! you like. Then check it with `cargo xtask exercises faults`.

#![allow(unused_imports, unused_variables, dead_code)]

use super::*;

pub struct ShortLines;

impl Handler for ShortLines {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, line: &[u8]) {
        todo!()
    }

    /// The loop has already decided: nothing more is read from `conn`, and
    /// it closes once what is queued is written. All left to do is to tell
    /// the client why.
    fn on_decode_error(&mut self, cx: &mut Context<'_>, conn: ConnId, error: &DecodeError) {
        todo!()
    }
}

pub fn short_lines_config() -> Config {
    todo!()
}
