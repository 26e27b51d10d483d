//! Your answer to the exercise of `book/src/writes.md`.
//!
//! > Writes and backpressure. *Exercise:* a server that answers `give N`
//! > with N bytes, for N up to gigabytes, without queueing them all: queue a
//! > piece at a time until the connection's output passes the high
//! > watermark, and the next pieces from `on_drained`, once the socket has
//! > taken enough. Memory per client then stays near the watermark, however
//! > big the answer and however slowly the client reads.
//!
//! Replace each `todo!()`: the signatures are what the tests call. A
//! type's fields are the book's solution's, a suggestion; change them as
//! you like. Then check it with `cargo xtask exercises writes`.

#![allow(unused_imports, unused_variables, dead_code)]

use super::*;

pub const HIGH_WATERMARK: usize = 64 * 1024;
pub const PIECE: usize = 16 * 1024;

#[derive(Default)]
pub struct Give {
    /// The most output queued for one connection: the test reads it, so
    /// store it there (`fetch_max`) each time you queue.
    pub most_queued: Arc<AtomicUsize>,
    // Your fields: what is still to send, per connection.
}

impl Give {
    /// Queues pieces until the output is past the high watermark or the
    /// answer is all queued. Past it, not at it: `on_drained` comes only
    /// for output that went above the high watermark, and calls this again.
    pub fn pump(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        todo!()
    }
}

impl Handler for Give {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, line: &[u8]) {
        todo!()
    }

    fn on_drained(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        todo!()
    }

    fn on_close(&mut self, _: &mut Context<'_>, conn: ConnId, _: &selectloop::CloseReason) {
        todo!()
    }
}
