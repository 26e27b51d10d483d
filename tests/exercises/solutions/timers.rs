//! The solution of the exercise of `book/src/timers.md`, which the book
//! shows folded; `tests/exercises/timers.rs` holds it to the exercise.

use super::*;

// ANCHOR: solution
pub struct CloseWhenSilent {
    pub silence: Duration,
    pub timer_of: HashMap<ConnId, TimerId>,
    pub conn_of: HashMap<TimerId, ConnId>,
}

impl CloseWhenSilent {
    pub fn new(silence: Duration) -> CloseWhenSilent {
        CloseWhenSilent {
            silence,
            timer_of: HashMap::new(),
            conn_of: HashMap::new(),
        }
    }

    /// Starts `conn`'s countdown again, cancelling the one running.
    pub fn rearm(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        if let Some(old) = self.timer_of.remove(&conn) {
            cx.cancel_timer(old);
            self.conn_of.remove(&old);
        }
        let timer = cx.set_timer(self.silence);
        self.timer_of.insert(conn, timer);
        self.conn_of.insert(timer, conn);
    }
}

impl Handler for CloseWhenSilent {
    fn on_connect(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        self.rearm(cx, conn);
    }

    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, line: &[u8]) {
        self.rearm(cx, conn);
        let _ = cx.send_frame(conn, line);
    }

    fn on_timer(&mut self, cx: &mut Context<'_>, timer: TimerId) {
        if let Some(conn) = self.conn_of.remove(&timer) {
            self.timer_of.remove(&conn);
            cx.close(conn);
        }
    }

    fn on_close(&mut self, cx: &mut Context<'_>, conn: ConnId, _: &CloseReason) {
        // A connection that left by itself: its timer has nothing to do.
        if let Some(timer) = self.timer_of.remove(&conn) {
            cx.cancel_timer(timer);
            self.conn_of.remove(&timer);
        }
    }
}
// ANCHOR_END: solution
