//! The solution of the exercise of `book/src/many-cores.md`, which the book
//! shows folded; `tests/exercises/many_cores.rs` holds it to the exercise.

use super::*;

// ANCHOR: solution
pub fn start_two_loops() -> std::io::Result<Group> {
    Group::builder(Config::new().codec(Lines::new(64)))
        .threads(2)
        // Round-robin hand-over: even with few clients, both loops get
        // some (SO_REUSEPORT hashes addresses, and may not).
        .balance(Balance::Acceptor)
        .spawn("127.0.0.1:0", |index: usize| {
            let answer = format!("loop {index}");
            move |cx: &mut Context<'_>, conn: ConnId, _line: &[u8]| {
                let _ = cx.send_frame(conn, answer.as_bytes());
            }
        })
}
// ANCHOR_END: solution
