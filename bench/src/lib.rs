//! What the load generator, the peer servers and the runner share: the
//! message pattern, the address flag, and how a server announces itself.

use std::net::SocketAddr;

pub mod report;
pub mod servers;

/// The byte at `offset` of message `seq` on one connection. Every message is
/// different from its neighbours, so a reply that is out of order, shifted or
/// from another connection fails the byte-for-byte check.
#[inline]
pub fn pattern_byte(seq: u64, offset: usize) -> u8 {
    (seq.wrapping_mul(31).wrapping_add(offset as u64) % 251) as u8
}

/// Fills `buf` with message `seq`.
pub fn fill_message(buf: &mut [u8], seq: u64) {
    for (offset, byte) in buf.iter_mut().enumerate() {
        *byte = pattern_byte(seq, offset);
    }
}

/// Parses `--addr HOST:PORT` (default 127.0.0.1:0) for the peer servers,
/// which take no other flag but `--threads`.
pub fn server_args() -> Result<(SocketAddr, usize), lexopt::Error> {
    use lexopt::prelude::*;
    let mut addr: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut threads = 1;
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("addr") => addr = parser.value()?.parse()?,
            Long("threads") => threads = parser.value()?.parse()?,
            other => return Err(other.unexpected()),
        }
    }
    Ok((addr, threads))
}

/// The first line every server prints, which the runner reads.
pub fn announce(addr: SocketAddr) {
    println!("listening on {addr}");
}
