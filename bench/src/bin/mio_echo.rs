//! The floor: a raw mio echo server, as mio's own examples write one. Each
//! readable event is read until `WouldBlock`, and what was read is written
//! back at once; only bytes the socket would not take wait for WRITABLE.

use std::collections::HashMap;
use std::io::{self, Read, Write};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(usize::MAX);

struct Conn {
    stream: TcpStream,
    pending: Vec<u8>,
}

fn main() -> io::Result<()> {
    let addr = selectloop_bench::server_args()
        .map_err(io::Error::other)?
        .addr;
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(addr)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    selectloop_bench::announce(listener.local_addr()?);

    let mut events = Events::with_capacity(1024);
    let mut conns: HashMap<usize, Conn> = HashMap::new();
    let mut next = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        poll.poll(&mut events, None).or_else(|e| {
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            }
        })?;
        for event in &events {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            stream.set_nodelay(true)?;
                            let token = Token(next);
                            next += 1;
                            poll.registry()
                                .register(&mut stream, token, Interest::READABLE)?;
                            conns.insert(
                                token.0,
                                Conn {
                                    stream,
                                    pending: Vec::new(),
                                },
                            );
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            let key = event.token().0;
            let mut closed = false;
            if let Some(conn) = conns.get_mut(&key) {
                if event.is_writable() && !conn.pending.is_empty() {
                    match conn.stream.write(&conn.pending) {
                        Ok(n) => {
                            conn.pending.drain(..n);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => closed = true,
                    }
                    if conn.pending.is_empty() {
                        poll.registry().reregister(
                            &mut conn.stream,
                            event.token(),
                            Interest::READABLE,
                        )?;
                    }
                }
                if event.is_readable() {
                    loop {
                        match conn.stream.read(&mut buf) {
                            Ok(0) => {
                                closed = true;
                                break;
                            }
                            Ok(n) => {
                                if conn.pending.is_empty() {
                                    match conn.stream.write(&buf[..n]) {
                                        Ok(w) => conn.pending.extend_from_slice(&buf[w..n]),
                                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                            conn.pending.extend_from_slice(&buf[..n])
                                        }
                                        Err(_) => {
                                            closed = true;
                                            break;
                                        }
                                    }
                                    if !conn.pending.is_empty() {
                                        poll.registry().reregister(
                                            &mut conn.stream,
                                            event.token(),
                                            Interest::READABLE | Interest::WRITABLE,
                                        )?;
                                    }
                                } else {
                                    conn.pending.extend_from_slice(&buf[..n]);
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(_) => {
                                closed = true;
                                break;
                            }
                        }
                    }
                }
            }
            if closed {
                if let Some(mut conn) = conns.remove(&key) {
                    let _ = poll.registry().deregister(&mut conn.stream);
                }
            }
        }
    }
}
