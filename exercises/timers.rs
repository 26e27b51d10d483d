//! Your answer to the exercise of `book/src/timers.md`.
//!
//! > Timers. *Exercise:* close a connection that sends nothing for a while,
//! > with a timer per connection: set it on connect, set it afresh on every
//! > message, and close the connection when it fires. (The loop does this
//! > itself with `Config::idle_timeout`; writing it shows how timers and
//! > connections meet.)
//!
//! Replace each `todo!()`: the signatures are what the tests call. A
//! type's fields are the book's solution's, a suggestion; change them as
//! you like. Then check it with `cargo xtask exercises timers`.

#![allow(unused_imports, unused_variables, dead_code)]

use super::*;

pub struct CloseWhenSilent {
    // Your fields: the silence allowed, and which timer counts down for
    // which connection.
}

impl CloseWhenSilent {
    pub fn new(silence: Duration) -> CloseWhenSilent {
        todo!()
    }

    /// Starts `conn`'s countdown again, cancelling the one running.
    pub fn rearm(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        todo!()
    }
}

impl Handler for CloseWhenSilent {
    fn on_connect(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        todo!()
    }

    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, line: &[u8]) {
        todo!()
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, timer: TimerId) {
        todo!()
    }

    fn on_close(&mut self, cx: &mut Context<'_>, conn: ConnId, _: &CloseReason) {
        todo!()
    }
}
