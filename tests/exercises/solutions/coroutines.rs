//! The solution of the exercise of `book/src/coroutines.md`, which the book
//! shows folded; `tests/exercises/coroutines.rs` holds it to the exercise.

use super::*;

// ANCHOR: solution
/// What a coroutine keeps on its stack across `sleep`, kept by hand: which
/// connection each timer will answer.
#[derive(Default)]
pub struct SleepWithoutBlocking {
    pub waiting: HashMap<TimerId, ConnId>,
}

impl Handler for SleepWithoutBlocking {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, line: &[u8]) {
        match line {
            b"slow" => {
                let timer = cx.set_timer(Duration::from_millis(500));
                self.waiting.insert(timer, conn); // "yield" to the loop
            }
            _ => {
                let _ = cx.send_frame(conn, b"fast");
            }
        }
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, timer: TimerId) {
        // "Resume": the connection may have left meanwhile; then the
        // send fails and there is nothing to do.
        if let Some(conn) = self.waiting.remove(&timer) {
            let _ = cx.send_frame(conn, b"done");
        }
    }
}
// ANCHOR_END: solution
