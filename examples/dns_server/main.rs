//! An authoritative DNS server for one zone, read from an RFC 1035 master
//! file: UDP and TCP on one port, served by one handler on one loop.
//! Driven by the real `dig` in the tests, measured with `dnsperf` beside
//! NSD serving the same file.
//!
//! ```text
//! cargo run --release --example dns_server -- --zone examples/dns_server/example.test.zone --addr 127.0.0.1:5353
//! dig @127.0.0.1 -p 5353 www.example.test A
//! dig @127.0.0.1 -p 5353 big.example.test TXT +tcp
//! ```
//!
//! It answers A, AAAA, TXT, CNAME (followed within the zone), NS, SOA and
//! MX with the AA flag; a name it does not have with NXDOMAIN, a name
//! without the type asked with no data (both with the zone's SOA in the
//! authority section); a name outside its zone with REFUSED. A UDP answer
//! longer than 512 bytes (or the size the client offered with EDNS0, at
//! most 1232) is cut to its question with TC set, and the same query over
//! TCP gets it whole. No wildcards, delegations, DNSSEC or zone transfers.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use selectloop::backend::BackendKind;
use selectloop::codec::{HeaderWidth, LengthPrefixed};
use selectloop::{Config, ConnId, Context, DatagramPeer, Handler, Reactor, SourceId};

#[path = "../common/mod.rs"]
mod common;
mod message;
mod zone;

use zone::Zone;

const USAGE: &str = "\
usage: dns_server --zone FILE [--addr HOST:PORT] [--backend epoll|poll|select|uring]

An authoritative DNS server for the zone in FILE (an RFC 1035 master file),
on UDP and TCP.
  --zone FILE        the zone to serve
  --addr HOST:PORT   where to listen, UDP and TCP (default 127.0.0.1:8088;
                     port 0 picks one)
  --backend NAME     epoll (default), poll, select or uring (io_uring; epoll where it is missing)
  -h, --help         this text
";

struct Authority {
    zone: Zone,
}

impl Handler for Authority {
    /// A query over UDP: the answer in one datagram, cut if too long.
    fn on_datagram(
        &mut self,
        cx: &mut Context<'_>,
        socket: SourceId,
        from: &DatagramPeer,
        data: &[u8],
    ) {
        if let Some(answer) = message::respond(&self.zone, data, true) {
            let _ = cx.send_to(socket, from, &answer);
        }
    }

    /// A query over TCP, framed by its two-byte length: the whole answer.
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, query: &[u8]) {
        match message::respond(&self.zone, query, false) {
            Some(answer) => {
                let _ = cx.send_frame(conn, &answer);
            }
            None => {
                cx.close(conn);
            }
        }
    }
}

fn main() -> ExitCode {
    common::run("dns_server", serve)
}

fn serve() -> io::Result<()> {
    common::init_logging();
    let mut addr = common::default_addr();
    let mut zone_file: Option<PathBuf> = None;
    let mut backend = BackendKind::default();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(common::invalid)? {
        use lexopt::prelude::*;
        match arg {
            Long("addr") => addr = common::addr(&mut parser)?,
            Long("zone") => zone_file = Some(common::value(&mut parser)?),
            Long("backend") => backend = common::backend(&mut parser)?,
            Long("help") | Short('h') => common::print_help(USAGE),
            other => return Err(common::invalid(other.unexpected())),
        }
    }
    let zone_file = zone_file
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "--zone FILE is required"))?;
    let text = std::fs::read_to_string(&zone_file).map_err(common::failed(format!(
        "cannot read {}",
        zone_file.display()
    )))?;
    let zone = Zone::parse(&text).map_err(|why| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: {why}", zone_file.display()),
        )
    })?;
    // DNS over TCP: each message after its length in two bytes.
    let codec = LengthPrefixed::new(usize::from(u16::MAX)).with_width(HeaderWidth::U16);
    let config = Config::new().backend(backend).codec(codec);
    let mut reactor = Reactor::with_config(config)?;
    let listener = common::listen(&mut reactor, addr)?;
    let bound = reactor.local_addr(listener).expect("a TCP listener");
    // The same port for UDP (the one port 0 picked for TCP).
    reactor
        .bind_udp(bound)
        .map_err(common::failed(format!("cannot bind UDP {bound}")))?;
    reactor.stop_on_signals()?;
    common::announce(&reactor, listener)?;
    reactor.run(&mut Authority { zone })
}
