//! A blocking server. *Exercise:* write socketserver's `handle_request()`:
//! accept one client, serve it until it leaves, and return, so that the
//! caller decides whether to serve another (`serve_forever` is a loop of
//! it).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::util::{connect, read_n, PATIENCE};

#[cfg(not(feature = "exercises"))]
#[path = "solutions/blocking.rs"]
mod answer;
#[cfg(feature = "exercises")]
#[path = "../../exercises/blocking.rs"]
mod answer;
use answer::*;

#[test]
fn handle_request_serves_one_client_and_returns() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    thread::spawn(move || {
        let served = handle_request(&listener);
        done_tx.send(served.map_err(|e| e.to_string())).unwrap();
        // Keep the listener open: a second client still connects (into
        // the backlog), but nobody serves it.
        thread::sleep(PATIENCE);
    });

    let mut first = connect(addr);
    assert_eq!(read_n(&mut first, 17), b"Hello client-side");
    first.write_all(b"hi").unwrap();
    assert_eq!(read_n(&mut first, 12), b"response: hi");
    first.shutdown(Shutdown::Write).unwrap();
    let served = done_rx
        .recv_timeout(PATIENCE)
        .expect("handle_request returned");
    assert_eq!(served, Ok(()));

    let mut second = TcpStream::connect(addr).unwrap();
    second
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut byte = [0; 1];
    let unanswered = second.read(&mut byte).unwrap_err();
    assert_eq!(unanswered.kind(), io::ErrorKind::WouldBlock);
}
