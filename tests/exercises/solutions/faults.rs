//! The solution of the exercise of `book/src/faults.md`, which the book
//! shows folded; `tests/exercises/faults.rs` holds it to the exercise.

use super::*;

// ANCHOR: solution
pub struct ShortLines;

impl Handler for ShortLines {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, line: &[u8]) {
        let _ = cx.send_frame(conn, line);
    }

    /// The loop has already decided: nothing more is read from `conn`, and
    /// it closes once what is queued is written. All left to do is to tell
    /// the client why.
    fn on_decode_error(&mut self, cx: &mut Context<'_>, conn: ConnId, error: &DecodeError) {
        let answer: &[u8] = match error {
            DecodeError::TooLong(_) => b"ERR line too long",
            _ => b"ERR bad input",
        };
        let _ = cx.send_frame(conn, answer);
    }
}

pub fn short_lines_config() -> Config {
    Config::new().codec(Lines::new(32))
}
// ANCHOR_END: solution
