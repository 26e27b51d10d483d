//! The solution of the exercise of `book/src/writes.md`, which the book
//! shows folded; `tests/exercises/writes.rs` holds it to the exercise.

use super::*;

// ANCHOR: solution
pub const HIGH_WATERMARK: usize = 64 * 1024;
pub const PIECE: usize = 16 * 1024;

#[derive(Default)]
pub struct Give {
    /// Bytes still to send, per connection.
    pub owed: HashMap<ConnId, usize>,
    /// The most output queued for one connection (for the test).
    pub most_queued: Arc<AtomicUsize>,
}

impl Give {
    /// Queues pieces until the output is past the high watermark or the
    /// answer is all queued. Past it, not at it: `on_drained` comes only
    /// for output that went above the high watermark, and calls this again.
    pub fn pump(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        let Some(owed) = self.owed.get_mut(&conn) else {
            return;
        };
        while *owed > 0 && cx.pending_output(conn) <= HIGH_WATERMARK {
            let piece = (*owed).min(PIECE);
            // The bytes count down to the end, so the client can check
            // that none was lost or repeated.
            let bytes: Vec<u8> = (0..piece).map(|i| ((*owed - i) % 251) as u8).collect();
            if cx.send(conn, &bytes).is_err() {
                break;
            }
            *owed -= piece;
            self.most_queued
                .fetch_max(cx.pending_output(conn), Ordering::Relaxed);
        }
        if *owed == 0 {
            self.owed.remove(&conn);
        }
    }
}

impl Handler for Give {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, line: &[u8]) {
        let asked = std::str::from_utf8(line)
            .ok()
            .and_then(|l| l.strip_prefix("give "));
        match asked.and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => {
                *self.owed.entry(conn).or_default() += n;
                self.pump(cx, conn);
            }
            None => {
                let _ = cx.send(conn, b"usage: give N\n");
            }
        }
    }

    fn on_drained(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        self.pump(cx, conn);
    }

    fn on_close(&mut self, _: &mut Context<'_>, conn: ConnId, _: &selectloop::CloseReason) {
        self.owed.remove(&conn);
    }
}
// ANCHOR_END: solution
