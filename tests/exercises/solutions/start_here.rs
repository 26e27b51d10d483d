//! The solution of the exercise of `book/src/start-here.md`, which the book
//! shows folded; `tests/exercises/start_here.rs` holds it to the exercise.

use super::*;

// ANCHOR: solution
pub const GREETING: &[u8] = b"Hello client-side";

/// Talks to a server of the seed's protocol: returns the greeting and one
/// answer per message, in order.
pub fn talk(addr: SocketAddr, messages: &[&str]) -> io::Result<(Vec<u8>, Vec<String>)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    let mut greeting = vec![0; GREETING.len()];
    stream.read_exact(&mut greeting)?;
    let mut answers = Vec::new();
    for message in messages {
        stream.write_all(message.as_bytes())?;
        // The answer is "response: " + the message: its length is known,
        // so read exactly that much before sending the next one.
        let mut answer = vec![0; "response: ".len() + message.len()];
        stream.read_exact(&mut answer)?;
        answers.push(String::from_utf8_lossy(&answer).into_owned());
    }
    Ok((greeting, answers))
}
// ANCHOR_END: solution
