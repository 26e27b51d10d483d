//! A chat room: every line a client sends goes to all the others.
//!
//! ```text
//! cargo run --example chat_server -- --addr 127.0.0.1:7000
//! nc 127.0.0.1 7000        # in two terminals, and type
//! ```
//!
//! The classic next step after an echo server. In the Python select() server,
//! `inputs` is the list of everyone connected; here the room is that list,
//! kept by the handler: joining adds to it, leaving removes from it, and a
//! line is written to every member but its sender. No locks: every hook runs
//! on the loop's one thread, so the room is never touched by two at once.

use std::io;
use std::process::ExitCode;

use selectloop::codec::Lines;
use selectloop::{CloseReason, Config, ConnId, Context, Handler, Reactor};

mod common;

#[derive(Default)]
struct Room {
    members: Vec<ConnId>,
}

impl Room {
    fn broadcast(&self, cx: &mut Context<'_>, from: Option<ConnId>, line: &[u8]) {
        for &member in &self.members {
            if Some(member) != from {
                // A member that cannot keep up is closed by the output limit,
                // not allowed to make the room wait.
                let _ = cx.send_frame(member, line);
            }
        }
    }
}

impl Handler for Room {
    fn on_connect(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        self.members.push(conn);
        let _ = cx.send_frame(conn, format!("welcome, you are {conn}").as_bytes());
        self.broadcast(cx, Some(conn), format!("* {conn} joined").as_bytes());
    }

    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, line: &[u8]) {
        let mut said = format!("{conn}: ").into_bytes();
        said.extend_from_slice(line);
        self.broadcast(cx, Some(conn), &said);
    }

    fn on_close(&mut self, cx: &mut Context<'_>, conn: ConnId, _reason: &CloseReason) {
        self.members.retain(|&m| m != conn);
        self.broadcast(cx, None, format!("* {conn} left").as_bytes());
    }
}

const USAGE: &str = "\
usage: chat_server [--addr HOST:PORT] [--backend epoll|poll|select|uring]

A chat room over TCP: each line a client sends goes to every other client.
  --addr HOST:PORT   where to listen (default 127.0.0.1:8088; port 0 picks one)
  --backend NAME     epoll (default), poll, select or uring (io_uring; epoll where it is missing)
  -h, --help         this text
";

fn main() -> ExitCode {
    common::run("chat_server", serve)
}

fn serve() -> io::Result<()> {
    common::init_logging();
    let (addr, backend) = common::parse_addr(USAGE)?;
    let config = Config::new()
        .backend(backend)
        .codec(Lines::new(4096))
        .max_output(1024 * 1024);
    let mut reactor = Reactor::with_config(config)?;
    let listener = common::listen(&mut reactor, addr)?;
    // Caught before the address is printed: a signal sent as soon as it
    // is read must find the loop listening for it. SIGINT or SIGTERM:
    // stop accepting, answer what was received, close.
    reactor.stop_on_signals()?;
    common::announce(&reactor, listener)?;
    let mut handler = Room::default();
    reactor.run(&mut handler)
}
