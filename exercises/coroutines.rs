//! Your answer to the exercise of `book/src/coroutines.md`.
//!
//! > Coroutines. *Exercise:* a greenlet would answer `slow` with
//! > `gevent.sleep(0.5)` and then `done`, and the other greenlets would run
//! > meanwhile. A handler that calls `thread::sleep` stops every client
//! > instead. Answer `slow` half a second later without blocking: remember
//! > what is due in a timer, and finish the work in `on_timer`. `fast` is
//! > answered at once, even while a `slow` waits.
//!
//! Replace each `todo!()`: the signatures are what the tests call. A
//! type's fields are the book's solution's, a suggestion; change them as
//! you like. Then check it with `cargo xtask exercises coroutines`.

#![allow(unused_imports, unused_variables, dead_code)]

use super::*;

/// What a coroutine keeps on its stack across `sleep`, kept by hand: which
/// connection each timer will answer.
#[derive(Default)]
pub struct SleepWithoutBlocking {
    pub waiting: HashMap<TimerId, ConnId>,
}

impl Handler for SleepWithoutBlocking {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, line: &[u8]) {
        todo!()
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, timer: TimerId) {
        todo!()
    }
}
