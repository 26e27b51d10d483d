//! The solution of the exercise of `book/src/blocking.md`, which the book
//! shows folded; `tests/exercises/blocking.rs` holds it to the exercise.

use super::*;

// ANCHOR: solution
/// Serves exactly one client of the seed's protocol, then returns.
pub fn handle_request(listener: &TcpListener) -> io::Result<()> {
    let (mut conn, _peer) = listener.accept()?;
    conn.write_all(b"Hello client-side")?;
    let mut chunk = [0; 1024];
    loop {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Ok(()); // the client left: this request is done
        }
        conn.write_all(b"response: ")?;
        conn.write_all(&chunk[..n])?;
    }
}
// ANCHOR_END: solution
