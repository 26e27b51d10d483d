//! Before select(): the blocking server of the seed notes' `socketserver`
//! chapter, in plain `std::net`, serving the seed's protocol.
//!
//! ```text
//! cargo run --example blocking_server -- --addr 127.0.0.1:7020            # TCPServer
//! cargo run --example blocking_server -- --addr 127.0.0.1:7020 --threads # ThreadingMixIn
//! ```
//!
//! Without `--threads` it is `socketserver.TCPServer` with `serve_forever`:
//! one client at a time. A second client's connect succeeds (the kernel
//! completes it into the listen backlog), but it is not greeted, nor
//! answered, until the first one leaves. With `--threads` it is
//! `ThreadingMixIn`: a thread per connection, every client served at once,
//! for the price of a thread (its stack, its scheduling) per client.
//!
//! The book's chapter "A blocking server" runs both; the reactor is the
//! third answer, one thread and no blocking call.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

// ANCHOR: handle
/// `BaseRequestHandler.handle`: greet, then answer each chunk, until the
/// client leaves. Every call here blocks until the client acts.
fn handle(mut conn: TcpStream) -> io::Result<()> {
    conn.write_all(b"Hello client-side")?;
    let mut chunk = [0u8; 1024];
    loop {
        let n = conn.read(&mut chunk)?; // blocks until the client sends
        if n == 0 {
            return Ok(()); // the client left
        }
        conn.write_all(&[&b"response: "[..], &chunk[..n]].concat())?;
    }
}
// ANCHOR_END: handle

mod common;

const USAGE: &str = "\
usage: blocking_server [--addr HOST:PORT] [--threads]

The server before select(): socketserver's TCPServer, one client at a
time, each served until it leaves; with --threads, a thread per client
(ThreadingTCPServer).
  --addr HOST:PORT   where to listen (default 127.0.0.1:8088; port 0 picks one)
  --threads          a thread per client instead of one client at a time
  -h, --help         this text
";

fn main() -> std::process::ExitCode {
    common::run("blocking_server", serve)
}

fn serve() -> io::Result<()> {
    let (addr, threads) = common::parse_addr_and_switch(USAGE, "threads")?;
    let listener =
        TcpListener::bind(addr).map_err(common::failed(format!("cannot listen on {addr}")))?;
    println!("listening on {}", listener.local_addr()?);
    // ANCHOR: serve_forever
    // `serve_forever`: accept, handle, repeat.
    for conn in listener.incoming() {
        let conn = conn?;
        if threads {
            // ThreadingMixIn: the handler runs on a thread of its own.
            thread::spawn(move || handle(conn));
        } else {
            // TCPServer: the next accept waits for this client to leave.
            let _ = handle(conn);
        }
    }
    // ANCHOR_END: serve_forever
    Ok(())
}
