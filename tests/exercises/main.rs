//! The book's exercises, solved. Each chapter of `book/` ends with an
//! exercise; its solution is the code between the `ANCHOR: solution`
//! markers of the file named after the chapter, which the book includes
//! (folded), and the tests below each solution hold it to what the
//! exercise asks. Work an exercise yourself first, then compare.

use std::net::{TcpListener, TcpStream};

#[path = "../util/mod.rs"]
mod util;

mod backends;
mod blocking;
mod coroutines;
mod faults;
mod framing;
mod many_cores;
mod measuring;
mod pools;
mod reactor;
mod seed_flaws;
mod seed_map;
mod select_literal;
mod start_here;
mod threads;
mod timers;
mod writes;

/// A connected pair of loopback sockets through `listener`: the client's
/// end, then the accepted end.
fn loopback_pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    (client, accepted)
}
