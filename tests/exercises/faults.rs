//! Faults and limits. *Exercise:* lines of at most 32 bytes; a client that
//! sends a longer one gets `ERR line too long` before the connection
//! closes, and every other client goes on as if nothing happened.

use std::io::Write;

use selectloop::codec::{DecodeError, Lines};
use selectloop::{Config, ConnId, Context, Handler};

use crate::util::{connect, read_n, read_to_end, Server};

#[cfg(not(feature = "exercises"))]
#[path = "solutions/faults.rs"]
mod answer;
#[cfg(feature = "exercises")]
#[path = "../../exercises/faults.rs"]
mod answer;
use answer::*;

#[test]
fn a_long_line_closes_only_its_sender_with_a_reason() {
    let server = Server::start(short_lines_config(), ShortLines);
    let mut good = connect(server.addr);
    let mut bad = connect(server.addr);
    good.write_all(b"first\n").unwrap();
    assert_eq!(read_n(&mut good, 6), b"first\n");

    let mut request = b"fine\n".to_vec();
    request.extend([b'x'; 100]);
    request.push(b'\n');
    bad.write_all(&request).unwrap();
    assert_eq!(read_to_end(&mut bad).unwrap(), b"fine\nERR line too long\n");
    drop(bad); // answered and closed: it leaves, as a client would

    good.write_all(b"second\n").unwrap();
    assert_eq!(read_n(&mut good, 7), b"second\n");
    let stats = server.wait_for("one refusal", |s| s.frames_too_long == 1);
    assert_eq!(stats.closed, 1, "only the sender was closed");
}
