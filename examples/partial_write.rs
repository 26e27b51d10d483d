//! A partial write, shown on a real socket: what code that ignores
//! `write`'s count loses, and what keeping the rest delivers.
//!
//! ```text
//! cargo run --example partial_write
//! ```
//!
//! A non-blocking `write` takes what fits in the socket's send buffer and
//! returns how much that was. Code that treats one `write` as "sent" loses
//! the rest without an error; the reactor keeps the rest in the
//! connection's output buffer and writes it when the socket is writable
//! again. Both are run here against a client that reads everything, with a
//! 16 MiB answer, far more than a socket buffer holds.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

mod common;

const ANSWER: usize = 16 * 1024 * 1024;

const USAGE: &str = "\
usage: partial_write

Shows, on a real socket, what code that ignores a non-blocking write's
count loses, and what keeping the rest and writing it when the socket is
writable delivers. Takes no arguments.
  -h, --help   this text
";

fn main() -> io::Result<()> {
    common::no_arguments("partial_write", USAGE);
    let answer: Vec<u8> = (0..ANSWER).map(|i| (i % 251) as u8).collect();
    let (received, took) = deliver(&answer, write_once)?;
    println!(
        "write once, ignore the count: the client got {received} of {ANSWER} bytes ({took} taken by write)"
    );
    let (received, took) = deliver(&answer, write_all_nonblocking)?;
    println!("keep the rest, write it when writable: the client got {received} of {ANSWER} bytes ({took} written)");
    Ok(())
}

// ANCHOR: wrong
/// The bug: one `write`, its count ignored. Returns what the kernel took.
fn write_once(socket: &mut TcpStream, answer: &[u8]) -> io::Result<usize> {
    match socket.write(answer) {
        Ok(n) => Ok(n), // n may be far less than answer.len(): the rest is lost
        Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(0),
        Err(e) => Err(e),
    }
}
// ANCHOR_END: wrong

// ANCHOR: right
/// The fix, as the reactor does it: keep what was not taken, wait until the
/// socket is writable (here with `poll(2)`), write the rest.
fn write_all_nonblocking(socket: &mut TcpStream, answer: &[u8]) -> io::Result<usize> {
    let mut written = 0;
    while written < answer.len() {
        match socket.write(&answer[written..]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => wait_writable(socket)?,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}
// ANCHOR_END: right

/// Waits (10 s at most) until `socket` takes more bytes: one `poll(2)`
/// (`WSAPoll` on Windows), through the crate's own backend.
fn wait_writable(socket: &TcpStream) -> io::Result<()> {
    use selectloop::backend::{Backend, PollBackend, Token};
    let mut poller = PollBackend::new();
    let watched = selectloop::raw_source(socket);
    poller.add(watched, Token(0), selectloop::Interest::WRITABLE)?;
    let mut events = Vec::new();
    poller.poll(&mut events, Some(std::time::Duration::from_secs(10)))
}

/// Connects a client that reads until end of file (with a deadline), has
/// the server side send `answer` with `send`, closes it, and returns how
/// many bytes the client got and what `send` reported.
fn deliver(
    answer: &[u8],
    send: fn(&mut TcpStream, &[u8]) -> io::Result<usize>,
) -> io::Result<(usize, usize)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut client = TcpStream::connect(listener.local_addr()?)?;
    let (mut server, _) = listener.accept()?;
    server.set_nonblocking(true)?;
    let reader = thread::spawn(move || {
        client.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut got = Vec::new();
        client.read_to_end(&mut got)?;
        Ok::<usize, io::Error>(got.len())
    });
    let took = send(&mut server, answer)?;
    drop(server); // the answer is "sent": close
    let received = reader
        .join()
        .map_err(|_| io::Error::other("the reader panicked"))??;
    Ok((received, took))
}
