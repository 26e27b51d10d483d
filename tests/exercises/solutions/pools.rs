//! The solution of the exercise of `book/src/pools.md`, which the book
//! shows folded; `tests/exercises/pools.rs` holds it to the exercise.

use super::*;

// ANCHOR: solution
pub fn count_words_on_the_pool(cx: &mut Context<'_>, conn: ConnId, line: &[u8]) {
    let line = String::from_utf8_lossy(line).into_owned();
    let submitted = cx.submit_ordered(
        conn,
        move || {
            // On a worker: the slow part. Short lines take longest here,
            // so jobs finish out of order.
            thread::sleep(Duration::from_millis(40 / (1 + line.len() as u64)));
            line.split_whitespace().count()
        },
        // On the loop thread, like apply_async's callback in the main
        // process: the only place that may touch the connection.
        |cx, conn, words| {
            let _ = cx.send_frame(conn, words.to_string().as_bytes());
        },
    );
    if submitted.is_err() {
        // The pool's queue is full: say so rather than block the loop.
        let _ = cx.send_frame(conn, b"busy");
    }
}

pub fn word_count_config() -> Config {
    Config::new().codec(Lines::new(1024)).workers(2)
}
// ANCHOR_END: solution
