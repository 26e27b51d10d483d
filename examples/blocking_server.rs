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
use std::net::{SocketAddr, TcpListener, TcpStream};
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

fn main() -> io::Result<()> {
    let (addr, threads) = arguments()?;
    let listener = TcpListener::bind(addr)?;
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

/// `--addr HOST:PORT` (default 127.0.0.1:8088) and `--threads`.
fn arguments() -> io::Result<(SocketAddr, bool)> {
    let mut addr: SocketAddr = ([127, 0, 0, 1], 8088).into();
    let mut threads = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                let value = args.next().unwrap_or_default();
                addr = value.parse().map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("--addr {value:?}: {e}"),
                    )
                })?;
            }
            "--threads" => threads = true,
            "--help" | "-h" => {
                println!("usage: blocking_server [--addr HOST:PORT] [--threads]");
                std::process::exit(0);
            }
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("unexpected argument {other:?}"),
                ))
            }
        }
    }
    Ok((addr, threads))
}
