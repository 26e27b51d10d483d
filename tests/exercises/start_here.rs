//! Start here. *Exercise:* write the seed's client in Rust: connect, read
//! the greeting, then send each message and wait for its answer before
//! sending the next. Waiting matters: the seed's server answers whatever
//! one `recv(1024)` returned, so two messages sent back to back may come
//! back as one answer.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

use crate::util::{start_example, PATIENCE};

#[cfg(not(feature = "exercises"))]
#[path = "solutions/start_here.rs"]
mod answer;
#[cfg(feature = "exercises")]
#[path = "../../exercises/start_here.rs"]
mod answer;
use answer::*;

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
