//! Start here. *Exercise:* write the seed's client in Rust: connect, read
//! the greeting, then send each message and wait for its answer before
//! sending the next. Waiting matters: the seed's server answers whatever
//! one `recv(1024)` returned, so two messages sent back to back may come
//! back as one answer.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

use crate::util::{start_example, PATIENCE};

// ANCHOR: solution
const GREETING: &[u8] = b"Hello client-side";

/// Talks to a server of the seed's protocol: returns the greeting and one
/// answer per message, in order.
fn talk(addr: SocketAddr, messages: &[&str]) -> io::Result<(Vec<u8>, Vec<String>)> {
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

#[test]
fn the_client_gets_the_greeting_and_one_answer_per_message() {
    let server = start_example("select_literal", &[]);
    let (greeting, answers) = talk(server.addr, &["one", "two", "three"]).unwrap();
    assert_eq!(greeting, GREETING);
    assert_eq!(
        answers,
        ["response: one", "response: two", "response: three"]
    );
}
