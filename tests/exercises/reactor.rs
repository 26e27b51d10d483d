//! The reactor. *Exercise:* a server that answers each line with its
//! length: a handler, a `Lines` codec, `Reactor::listen`, and `run` on a
//! thread of its own, stopped from outside through a `Handle`.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use selectloop::codec::Lines;
use selectloop::{Config, ConnId, Context, Handle, Reactor};

use crate::util::{connect, read_n, read_to_end, PATIENCE};

#[cfg(not(feature = "exercises"))]
#[path = "solutions/reactor.rs"]
mod answer;
#[cfg(feature = "exercises")]
#[path = "../../exercises/reactor.rs"]
mod answer;
use answer::*;

#[test]
fn each_line_is_answered_with_its_length_however_it_is_split() {
    let (addr, handle, thread) = start("127.0.0.1:0").unwrap();
    let mut client = connect(addr);
    // One byte per write: the codec, not the reads, finds the lines.
    for &byte in b"hello\nhi\n\nselectloop\n" {
        client.write_all(&[byte]).unwrap();
    }
    assert_eq!(read_n(&mut client, 9), b"5\n2\n0\n10\n");

    handle.stop().unwrap();
    let finished = thread.join().unwrap();
    assert!(finished.is_ok(), "the loop ended cleanly: {finished:?}");
    // Stopping ends the loop; dropping the reactor closed the connection.
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(read_to_end(&mut client).unwrap(), b"");
}
