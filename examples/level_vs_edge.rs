//! Level- versus edge-triggered readiness, shown on real sockets.
//!
//! ```text
//! cargo run --example level_vs_edge
//! ```
//!
//! The same two handlers run on the crate's epoll backend (edge-triggered,
//! through mio) and on its poll(2) backend (level-triggered):
//!
//! 1. A handler that reads once per event (1 KiB) while 3 KiB wait. On a
//!    level-triggered backend the next poll reports the socket again, so
//!    the rest is read on later turns. On an edge-triggered one nothing new
//!    arrives, so no new edge: the 2 KiB left stay stuck in the socket
//!    until the peer happens to send more. The fix is to read until
//!    `WouldBlock` on every event, which is what the reactor does (within
//!    its read budget, keeping the socket on its ready list when the
//!    budget runs out).
//! 2. A handler that chooses not to read a socket for now (its queue is
//!    full, say) but leaves it watched. Edge-triggered polling reports it
//!    once and then sleeps; level-triggered polling reports it on every
//!    call, a busy loop. The fix is to stop watching it for reading, which
//!    is what the reactor does when it pauses a connection.
//!
//! Everything is on loopback and bounded by timeouts; it prints what it
//! sees and exits.
//!
//! On Windows the default backend (`iocp`) is level-triggered too: mio
//! re-arms a socket's poll only when a read through its own object says
//! `WouldBlock`, and the crate's backend re-arms every socket it reports
//! instead. There both rows show the level-triggered behaviour.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};

use std::time::{Duration, Instant};

use selectloop::backend::{Backend, MioBackend, PollBackend, Token};
use selectloop::Interest;

mod common;

const SENT: usize = 3 * 1024;
const TOKEN: Token = Token(1);

const USAGE: &str = "\
usage: level_vs_edge

Shows, on real sockets, what reading once per event does on a
level-triggered backend (poll) and on an edge-triggered one (epoll), and
what reading until WouldBlock does on both. Takes no arguments.
  -h, --help   this text
";

fn main() -> io::Result<()> {
    common::no_arguments("level_vs_edge", USAGE);
    for (title, drain) in [
        (
            format!("1. read once per event, {SENT} bytes waiting:"),
            false,
        ),
        (
            "   the fix, read until WouldBlock on each event:".into(),
            true,
        ),
    ] {
        println!("{title}");
        for mut backend in backends()? {
            let (mut client, mut server) = pair()?;
            client.write_all(&[b'x'; SENT])?;
            let read = read_per_event(&mut *backend, &mut server, drain)?;
            println!(
                "   {:<6} read {read} of {SENT} bytes{}",
                backend.name(),
                verdict(read)
            );
        }
    }

    println!("2. a socket left unread but still watched, for 100 ms:");
    for mut backend in backends()? {
        let (mut client, server) = pair()?;
        client.write_all(b"not read yet")?;
        backend.add(selectloop::raw_source(&server), TOKEN, Interest::READABLE)?;
        let wakeups = wakeups_in(&mut *backend, Duration::from_millis(100))?;
        println!(
            "   {:<6} woke {wakeups} times{}",
            backend.name(),
            if wakeups > 10 {
                ": a busy loop, a core burnt doing nothing"
            } else {
                ": reported once, then quiet"
            }
        );
        // The fix on either kind: stop watching what will not be read.
        backend.delete(selectloop::raw_source(&server))?;
        let after = wakeups_in(&mut *backend, Duration::from_millis(100))?;
        println!("   {:<6} after removing the interest: {after} wakeups", "");
    }
    Ok(())
}

/// One backend of each kind: edge-triggered epoll, level-triggered poll.
fn backends() -> io::Result<Vec<Box<dyn Backend>>> {
    Ok(vec![
        Box::new(MioBackend::new(64)?),
        Box::new(PollBackend::new()),
    ])
}

/// A connected pair on loopback; the server side is non-blocking.
fn pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    server.set_nonblocking(true)?;
    Ok((client, server))
}

fn verdict(read: usize) -> String {
    if read == SENT {
        ": all of it".into()
    } else {
        format!(
            ": {} bytes stuck, no new event will come for them",
            SENT - read
        )
    }
}

// ANCHOR: per_event
/// Reads what arrives, polling with a 200 ms timeout until a poll comes
/// back empty. `drain`: on each event read until `WouldBlock` (correct on
/// any backend); otherwise one 1 KiB read per event (the bug).
fn read_per_event(
    backend: &mut dyn Backend,
    server: &mut TcpStream,
    drain: bool,
) -> io::Result<usize> {
    backend.add(selectloop::raw_source(&*server), TOKEN, Interest::READABLE)?;
    let mut events = Vec::new();
    let mut read = 0;
    let mut buf = [0u8; 1024];
    for _ in 0..16 {
        backend.poll(&mut events, Some(Duration::from_millis(200)))?;
        if events.is_empty() {
            break;
        }
        loop {
            match server.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => read += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
            if !drain {
                break;
            }
        }
    }
    backend.delete(selectloop::raw_source(&*server))?;
    Ok(read)
}
// ANCHOR_END: per_event

/// How many polls return with an event within `window` (each poll waits
/// at most what is left of it).
fn wakeups_in(backend: &mut dyn Backend, window: Duration) -> io::Result<usize> {
    let start = Instant::now();
    let mut events = Vec::new();
    let mut wakeups = 0;
    while let Some(left) = window.checked_sub(start.elapsed()) {
        backend.poll(&mut events, Some(left))?;
        if !events.is_empty() {
            wakeups += 1;
        }
    }
    Ok(wakeups)
}
