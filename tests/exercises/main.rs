//! The book's exercises. Each chapter of `book/` ends with an exercise;
//! the file of `tests/exercises/` named after the chapter holds the tests
//! of what it asks. They run against the book's solution
//! (`tests/exercises/solutions/`, which the book shows folded), or, with
//! `cargo xtask exercises`, against the reader's own answer in
//! `exercises/` (the `exercises` feature), which starts as the solution's
//! signatures with `todo!()` for bodies.

// A reader's answer need not use every name the solution did.
#![cfg_attr(feature = "exercises", allow(unused_imports))]

#[cfg(unix)]
use std::net::{TcpListener, TcpStream};

#[path = "../util/mod.rs"]
mod util;

// poll(2) and select(2) as Unix spells them.
#[cfg(unix)]
mod backends;
mod blocking;
mod completion;
mod coroutines;
mod faults;
mod framing;
mod many_cores;
mod measuring;
mod pools;
mod reactor;
mod seed_flaws;
mod seed_map;
#[cfg(unix)]
mod select_literal;
mod start_here;
mod threads;
mod timers;
mod writes;

/// A connected pair of loopback sockets through `listener`: the client's
/// end, then the accepted end.
#[cfg(unix)]
fn loopback_pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    (client, accepted)
}
