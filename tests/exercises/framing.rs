//! Framing. *Exercise:* write a `Decoder` for netstrings (`5:hello,`: the
//! length in decimal, a colon, the bytes, a comma), and a server that
//! echoes each one. Bytes that break the format close only the connection
//! that sent them, after the messages before them are answered.

use std::io::Write;

use selectloop::codec::{DecodeError, Decoder, Frame};
use selectloop::{Config, ConnId, Context};

use crate::util::{connect, read_n, read_to_end, Server};

#[cfg(not(feature = "exercises"))]
#[path = "solutions/framing.rs"]
mod answer;
#[cfg(feature = "exercises")]
#[path = "../../exercises/framing.rs"]
mod answer;
use answer::*;

#[test]
fn netstrings_are_echoed_however_the_bytes_are_split() {
    let server = Server::start(netstring_config(), echo_netstring);
    let stream: &[u8] = b"5:hello,3:abc,0:,12:hello, world,";
    for cut in 0..=stream.len() {
        let mut client = connect(server.addr);
        client.write_all(&stream[..cut]).unwrap();
        client.flush().unwrap();
        client.write_all(&stream[cut..]).unwrap();
        assert_eq!(read_n(&mut client, stream.len()), stream, "cut at {cut}");
    }
}

#[test]
fn a_broken_netstring_closes_only_its_connection() {
    let server = Server::start(netstring_config(), echo_netstring);
    let mut good = connect(server.addr);
    let mut bad = connect(server.addr);
    bad.write_all(b"3:abc,5:hello!").unwrap();
    // The message before the fault is answered, then the connection ends.
    assert_eq!(read_to_end(&mut bad).unwrap(), b"3:abc,");
    drop(bad); // answered and closed: it leaves, as a client would
    good.write_all(b"2:ok,").unwrap();
    assert_eq!(read_n(&mut good, 5), b"2:ok,");
    let mut letters = connect(server.addr);
    letters.write_all(b"five:hello,").unwrap();
    assert_eq!(read_to_end(&mut letters).unwrap(), b"");
    drop(letters);
    server.wait_for("two protocol errors", |stats| stats.protocol_errors == 2);
}
