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

/// What the peer servers are told: where to listen, and how many threads.
#[derive(Clone, Copy, Debug)]
pub struct ServerArgs {
    pub addr: SocketAddr,
    pub threads: usize,
    /// tokio: the multi-thread runtime even with one worker (the
    /// many-cores table compares 1 to 8 workers of the same runtime).
    pub multi_thread: bool,
}

/// Parses `--addr HOST:PORT` (default 127.0.0.1:0), `--threads N` and
/// `--multi-thread` for the peer servers.
pub fn server_args() -> Result<ServerArgs, lexopt::Error> {
    use lexopt::prelude::*;
    let mut args = ServerArgs {
        addr: ([127, 0, 0, 1], 0).into(),
        threads: 1,
        multi_thread: false,
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("addr") => args.addr = parser.value()?.parse()?,
            Long("threads") => args.threads = parser.value()?.parse()?,
            Long("multi-thread") => args.multi_thread = true,
            other => return Err(other.unexpected()),
        }
    }
    Ok(args)
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
