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

// ANCHOR: solution
fn answer_with_length(cx: &mut Context<'_>, conn: ConnId, line: &[u8]) {
    // send_frame frames the answer with the connection's codec: a line.
    let _ = cx.send_frame(conn, line.len().to_string().as_bytes());
}

/// Starts the server on `addr` on a thread of its own; returns where it
/// listens, a handle to stop it, and the thread, which ends with the loop.
fn start(addr: &str) -> io::Result<(SocketAddr, Handle, JoinHandle<io::Result<()>>)> {
    let addr = addr.to_string();
    let (ready_tx, ready_rx) = mpsc::channel();
    // A Reactor stays on the thread that made it (it is not Send): build
    // it there, and send back only what other threads may hold.
    let thread = thread::spawn(move || {
        let started = (|| {
            let mut reactor = Reactor::with_config(Config::new().codec(Lines::new(1024)))?;
            let listener = reactor.listen(&addr)?;
            let bound = reactor
                .local_addr(listener)
                .expect("a listener has an address");
            Ok::<_, io::Error>((reactor.handle()?, bound, reactor))
        })();
        match started {
            Ok((handle, bound, mut reactor)) => {
                let _ = ready_tx.send(Ok((bound, handle)));
                reactor.run(&mut answer_with_length)
            }
            Err(e) => {
                let _ = ready_tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                Err(e)
            }
        }
    });
    let (bound, handle) = ready_rx.recv().expect("the loop thread reports")?;
    Ok((bound, handle, thread))
}
// ANCHOR_END: solution

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
