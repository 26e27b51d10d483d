//! More clients than `select()` can watch, and a burst beyond the seed's backlog.

mod util;

use std::net::TcpStream;

use selectloop::codec::Chunks;
use selectloop::Config;
use util::{connect, read_n, write_all, Respond, Server, GREETING};

/// `select()` takes at most 1024 descriptors (FD_SETSIZE); the seed's server
/// fails past that. Here 1,500 clients are connected at once and each gets
/// its own answer.
#[test]
fn more_than_1024_clients_are_each_answered() {
    const CLIENTS: usize = 1500;
    // Both ends of every connection live in this process.
    let limit = util::raise_fd_limit(2 * CLIENTS as u64 + 256);
    assert!(
        limit >= 2 * CLIENTS as u64 + 64,
        "open-file limit {limit} is too low for this test"
    );
    let server = Server::start(Config::new().codec(Chunks::new(1024)), Respond);
    let mut clients: Vec<TcpStream> = (0..CLIENTS).map(|_| connect(server.addr)).collect();
    server.wait_for("every client to be accepted", |s| {
        s.accepted == CLIENTS as u64
    });
    for (i, client) in clients.iter_mut().enumerate() {
        write_all(client, format!("{i:04}").as_bytes());
    }
    for (i, client) in clients.iter_mut().enumerate() {
        assert_eq!(read_n(client, GREETING.len()), GREETING);
        let expect = format!("response: {i:04}");
        assert_eq!(
            read_n(client, expect.len()),
            expect.as_bytes(),
            "client {i}"
        );
    }
    drop(clients);
    let stats = server.wait_for("every client to be closed", |s| s.closed == CLIENTS as u64);
    assert_eq!(stats.messages, CLIENTS as u64);
}

/// The seed listens with a backlog of five. A burst of 300 connections that
/// arrive while the loop is busy elsewhere all get through here.
#[test]
fn burst_of_connections_beyond_a_backlog_of_five_is_accepted() {
    let server = Server::start(Config::new().codec(Chunks::new(1024)), Respond);
    let mut clients: Vec<TcpStream> = (0..300).map(|_| connect(server.addr)).collect();
    for client in &mut clients {
        assert_eq!(read_n(client, GREETING.len()), GREETING);
    }
    // The counters are published after the turn that sent the greetings.
    server.wait_for("300 accepted", |s| s.accepted == 300);
}
