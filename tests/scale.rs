//! More clients than `select()` can watch, and a burst beyond the seed's backlog.

mod util;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use selectloop::codec::Chunks;
use selectloop::{Config, Reactor};
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

/// Connects `clients` times while the loop is not accepting (it has not
/// run yet), each connect given 200 ms; returns the reactor and the clients
/// whose connect completed.
fn burst_while_not_accepting(backlog: Option<u32>, clients: usize) -> (Reactor, Vec<TcpStream>) {
    util::init_logger();
    let mut config = Config::new().codec(Chunks::new(1024));
    if let Some(backlog) = backlog {
        config = config.backlog(backlog);
    }
    let mut reactor = Reactor::with_config(config).unwrap();
    let listener = reactor.listen("127.0.0.1:0").unwrap();
    let addr = reactor.local_addr(listener).unwrap();
    let connected = (0..clients)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok())
        .collect();
    (reactor, connected)
}

/// The seed listens with a backlog of five: a burst that arrives while its
/// loop is busy elsewhere finds the kernel's queue full, and the rest of
/// the burst is dropped. Shown here with the same backlog.
#[test]
fn a_backlog_of_five_drops_a_burst_that_arrives_while_not_accepting() {
    let (_reactor, connected) = burst_while_not_accepting(Some(5), 20);
    assert!(
        connected.len() < 20,
        "all 20 connected with a backlog of 5: the kernel queued more than asked"
    );
}

/// With the default backlog (1024) a burst of 300 connections that arrive
/// while the loop is not accepting all complete, and each is then accepted
/// and greeted.
#[test]
fn burst_of_connections_beyond_a_backlog_of_five_is_accepted() {
    let (mut reactor, mut clients) = burst_while_not_accepting(None, 300);
    assert_eq!(
        clients.len(),
        300,
        "connects timed out: the backlog is too small"
    );
    let deadline = Instant::now() + util::PATIENCE;
    while reactor.stats().accepted < 300 {
        assert!(
            Instant::now() < deadline,
            "accepted {}",
            reactor.stats().accepted
        );
        reactor
            .run_once(&mut Respond, Some(Duration::from_millis(5)))
            .unwrap();
    }
    for client in &mut clients {
        assert_eq!(read_n(client, GREETING.len()), GREETING);
    }
}
