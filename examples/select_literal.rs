//! The seed's select() server, ported line by line: the same lists, the same
//! dict, the same one-second `select`, so that it can be read beside the
//! Python (`examples/select_server.py`) before meeting the reactor.
//!
//! ```text
//! cargo run --example select_literal -- --addr 127.0.0.1:8088 [--verbose]
//! ```
//!
//! Same protocol as `select_server`: it prints `listening on ADDR`, greets
//! each client with `Hello client-side`, and answers each chunk it reads
//! (one `recv(1024)`) with `response: ` + the chunk. `--verbose` prints the
//! seed's line per loop (inputs, readable, writable, outputs) to stderr.
//!
//! Where the seed is wrong, the port changes one line and says so
//! (`// seed:` shows the Python it replaces):
//!
//! - `message[w]` is a queue answered oldest first (the seed's `pop()`
//!   answers the newest first);
//! - a socket is in `outputs` at most once, and one that leaves is dropped
//!   from every list (the seed raises `KeyError` and stops for everyone);
//! - a departed socket is closed, after what it was owed is written (the
//!   seed leaks its descriptor and forgets its answers);
//! - a descriptor past `FD_SETSIZE` is refused (Python raises `ValueError`;
//!   C would write past the end of the `fd_set`).
//!
//! What it keeps from the seed, on purpose: blocking writes (`sendall`), so
//! one client that stops reading stalls every other; unbounded queues; no
//! framing (`b"one"` and `b"two"` may come back as `response: onetwo`). The
//! reactor (`select_server`) fixes those too; the book shows each.

#[cfg(unix)]
use std::collections::{HashMap, VecDeque};
use std::io;
#[cfg(unix)]
use std::io::{Read, Write};
#[cfg(unix)]
use std::net::{TcpListener, TcpStream};
#[cfg(unix)]
use std::os::unix::io::{AsRawFd, RawFd};
#[cfg(unix)]
use std::time::Duration;

mod common;

const USAGE: &str = "\
usage: select_literal [--addr HOST:PORT] [--verbose]

The seed's select() server, line by line: select(2) on inputs and
outputs, a message queue per client, one second's timeout.
  --addr HOST:PORT   where to listen (default 127.0.0.1:8088; port 0 picks one)
  --verbose          print the seed's line per loop (inputs, readable,
                     writable, outputs) to stderr
  -h, --help         this text
";

fn main() -> std::process::ExitCode {
    common::run("select_literal", serve)
}

/// Windows's `select` takes arrays of sockets, not bitmaps of numbers
/// (the crate's select backend speaks both); this program is the Unix
/// call, line by line.
#[cfg(windows)]
fn serve() -> io::Result<()> {
    common::parse_addr_and_switch(USAGE, "verbose")?;
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "select_literal is Unix's select(2) itself; on Windows run select_server --backend select",
    ))
}

#[cfg(unix)]
fn serve() -> io::Result<()> {
    let (addr, verbose) = common::parse_addr_and_switch(USAGE, "verbose")?;
    // seed: sk = socket.socket(); sk.bind(addr); sk.listen(5)
    let sk = TcpListener::bind(addr).map_err(common::failed(format!("cannot listen on {addr}")))?;
    println!("listening on {}", sk.local_addr()?);

    // ANCHOR: state
    let mut inputs: Vec<RawFd> = vec![sk.as_raw_fd()]; // watched for reading
    let mut outputs: Vec<RawFd> = Vec::new(); // an answer is due
    let mut message: HashMap<RawFd, VecDeque<Vec<u8>>> = HashMap::new();
    // Python's lists hold the socket objects; here they hold descriptors,
    // and this map owns the sockets (dropping one closes it).
    let mut sockets: HashMap<RawFd, TcpStream> = HashMap::new();
    // ANCHOR_END: state

    // ANCHOR: loop
    loop {
        // seed: rlist, wlist, elist = select.select(inputs, outputs, [], 1)
        let (rlist, wlist) = select(&inputs, &outputs, Duration::from_secs(1))?;
        if verbose {
            // seed: print(len(inputs), len(rlist), len(wlist), len(outputs))
            eprintln!(
                "{} {} {} {}",
                inputs.len(),
                rlist.len(),
                wlist.len(),
                outputs.len()
            );
        }
        for r in rlist {
            if r == sk.as_raw_fd() {
                // seed: conn, addr = r.accept(); inputs.append(conn)
                let (mut conn, _peer) = sk.accept()?;
                let fd = conn.as_raw_fd();
                if fd as usize >= libc::FD_SETSIZE {
                    eprintln!("descriptor {fd} is past FD_SETSIZE: connection refused");
                    continue; // dropped: closed
                }
                // seed: conn.sendall(bytes("Hello client-side", ...))
                if conn.write_all(b"Hello client-side").is_err() {
                    continue;
                }
                inputs.push(fd);
                message.insert(fd, VecDeque::new()); // seed: message[conn] = []
                sockets.insert(fd, conn);
            } else {
                let mut chunk = vec![0u8; 1024];
                // seed: ret = r.recv(1024)
                match sockets.get_mut(&r).map(|s| s.read(&mut chunk)) {
                    Some(Ok(n)) if n > 0 => {
                        chunk.truncate(n);
                        // seed: outputs.append(r), once per chunk
                        if !outputs.contains(&r) {
                            outputs.push(r);
                        }
                        // seed: message[r].append(ret)
                        message.entry(r).or_default().push_back(chunk);
                    }
                    // seed: inputs.remove(r); del message[r]
                    _ => {
                        inputs.retain(|&fd| fd != r);
                        if message.get(&r).is_none_or(VecDeque::is_empty) {
                            forget(r, &mut outputs, &mut message, &mut sockets);
                        } // else: closed once its answers are written, below
                    }
                }
            }
        }
        for w in wlist {
            // seed: msg = message[w].pop()  (the newest; here the oldest)
            let Some(msg) = message.get_mut(&w).and_then(VecDeque::pop_front) else {
                outputs.retain(|&fd| fd != w);
                continue;
            };
            // seed: w.sendall(bytes("response: ", ...) + msg)
            let sent = sockets
                .get_mut(&w)
                .map(|s| s.write_all(&[&b"response: "[..], &msg].concat()));
            let done = message.get(&w).is_none_or(VecDeque::is_empty);
            if !matches!(sent, Some(Ok(()))) || (done && !inputs.contains(&w)) {
                inputs.retain(|&fd| fd != w);
                forget(w, &mut outputs, &mut message, &mut sockets);
            } else if done {
                outputs.retain(|&fd| fd != w); // seed: outputs.remove(w)
            }
        }
    }
    // ANCHOR_END: loop
}

/// Drops a connection from every list, and closes it.
#[cfg(unix)]
fn forget(
    fd: RawFd,
    outputs: &mut Vec<RawFd>,
    message: &mut HashMap<RawFd, VecDeque<Vec<u8>>>,
    sockets: &mut HashMap<RawFd, TcpStream>,
) {
    outputs.retain(|&o| o != fd);
    message.remove(&fd);
    sockets.remove(&fd);
}

/// `select(2)` as Python's `select.select` presents it: lists in, the
/// ready ones out.
#[cfg(unix)]
fn select(
    inputs: &[RawFd],
    outputs: &[RawFd],
    timeout: Duration,
) -> io::Result<(Vec<RawFd>, Vec<RawFd>)> {
    // SAFETY: fd_set is plain data, initialised by FD_ZERO; every
    // descriptor put in one is below FD_SETSIZE (checked at accept).
    unsafe {
        let mut readable: libc::fd_set = std::mem::zeroed();
        let mut writable: libc::fd_set = std::mem::zeroed();
        libc::FD_ZERO(&mut readable);
        libc::FD_ZERO(&mut writable);
        for &fd in inputs {
            libc::FD_SET(fd, &mut readable);
        }
        for &fd in outputs {
            libc::FD_SET(fd, &mut writable);
        }
        let highest = inputs.iter().chain(outputs).copied().max().unwrap_or(0);
        let mut wait = libc::timeval {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_usec: timeout.subsec_micros() as libc::suseconds_t,
        };
        let ready = libc::select(
            highest + 1,
            &mut readable,
            &mut writable,
            std::ptr::null_mut(),
            &mut wait,
        );
        if ready < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                return Ok((Vec::new(), Vec::new()));
            }
            return Err(error);
        }
        let rlist = inputs
            .iter()
            .copied()
            .filter(|&fd| libc::FD_ISSET(fd, &readable));
        let wlist = outputs
            .iter()
            .copied()
            .filter(|&fd| libc::FD_ISSET(fd, &writable));
        Ok((rlist.collect(), wlist.collect()))
    }
}
