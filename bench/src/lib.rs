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

/// The switches a benchmark binary was given, out of `known`. `--help`
/// prints the binary's doc (`usage`) and exits; anything else unknown is
/// refused with it, rather than ignored: a benchmark that takes minutes
/// and rewrites the figures in docs/ must not start on a typo.
pub fn switches(usage: &str, known: &[&str]) -> Vec<String> {
    let mut given = Vec::new();
    for arg in std::env::args().skip(1) {
        if arg == "--help" || arg == "-h" {
            print!("{usage}");
            std::process::exit(0);
        }
        if !known.contains(&arg.as_str()) {
            eprint!("unknown argument {arg:?}\n\n{usage}");
            std::process::exit(2);
        }
        given.push(arg);
    }
    given
}

/// The first line every server prints, which the runner reads.
pub fn announce(addr: SocketAddr) {
    println!("listening on {addr}");
}
