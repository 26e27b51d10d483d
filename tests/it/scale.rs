//! More clients than `select()` can watch, and a burst beyond the seed's backlog.

use crate::util;

use util::BackendKind;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use selectloop::codec::Chunks;
use selectloop::{Config, Reactor};
use util::{connect, read_n, write_all, Respond, Server, GREETING};

const CLIENTS: usize = 1500;

/// `select()` takes at most 1024 descriptors (FD_SETSIZE); the seed's server
/// fails past that. Here 1,500 clients are connected at once and each gets
/// its own answer, on epoll and poll. The select backend cannot watch a
/// descriptor past FD_SETSIZE: it refuses those connections (closing them,
/// counted in `Stats::unwatchable`) and answers every other one.
fn more_than_1024_clients_are_each_answered(backend: BackendKind) {
    let _many = util::many_descriptors();
    // Both ends of every connection live in this process.
    let limit = util::raise_fd_limit(2 * CLIENTS as u64 + 256);
    assert!(
        limit >= 2 * CLIENTS as u64 + 64,
        "open-file limit {limit} is too low for this test"
    );
    let server = Server::start(
        Config::new().backend(backend).codec(Chunks::new(1024)),
        Respond,
    );
    let mut clients: Vec<TcpStream> = (0..CLIENTS).map(|_| connect(server.addr)).collect();
    if backend == BackendKind::Select {
        return select_refuses_past_fd_setsize_and_answers_the_rest(server, clients);
    }
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
// Not `per_backend!`: its select case takes the descriptor lock shared,
// and this test needs it alone.
mod more_than_1024_clients_are_each_answered {
    use super::{more_than_1024_clients_are_each_answered as case, BackendKind};
    #[test]
    fn epoll() {
        case(BackendKind::Epoll)
    }
    #[test]
    fn poll() {
        case(BackendKind::Poll)
    }
    #[test]
    fn select() {
        case(BackendKind::Select)
    }
}

fn select_refuses_past_fd_setsize_and_answers_the_rest(
    server: Server,
    mut clients: Vec<TcpStream>,
) {
    let stats = server.wait_for("every client to be accepted or refused", |s| {
        s.accepted + s.unwatchable == CLIENTS as u64
    });
    // Both ends live in this process, so descriptors pass 1,024 early.
    assert!(stats.unwatchable > 0, "no connection reached FD_SETSIZE");
    assert!(stats.accepted > 100, "too few were served: {stats:?}");
    let (mut answered, mut refused) = (0, 0);
    for (i, client) in clients.iter_mut().enumerate() {
        // A refused client may find its connection reset as it writes.
        let _ = client.write_all(format!("{i:04}").as_bytes());
    }
    for (i, client) in clients.iter_mut().enumerate() {
        let mut got = Vec::new();
        let expect = format!("{}response: {i:04}", String::from_utf8_lossy(GREETING));
        let _ = client.take(expect.len() as u64).read_to_end(&mut got);
        if got.is_empty() {
            refused += 1; // end of file or reset, before any greeting
        } else {
            assert_eq!(got, expect.as_bytes(), "client {i}");
            answered += 1;
        }
    }
    assert_eq!(
        refused, stats.unwatchable,
        "refused clients against the count"
    );
    assert_eq!(answered, stats.accepted);
    drop(clients);
    let stats = server.wait_for("every served client to be closed", |s| {
        s.closed == stats.accepted
    });
    assert_eq!(stats.messages, stats.accepted);
}

/// Connects up to `clients` times while the loop is not accepting (it has
/// not run yet), each connect given 200 ms, and stops at the first that
/// does not complete; returns the reactor and the clients connected.
fn burst_while_not_accepting(
    backend: BackendKind,
    backlog: Option<u32>,
    clients: usize,
) -> (Reactor, Vec<TcpStream>) {
    util::init_logger();
    let mut config = Config::new().backend(backend).codec(Chunks::new(1024));
    if let Some(backlog) = backlog {
        config = config.backlog(backlog);
    }
    let mut reactor = Reactor::with_config(config).unwrap();
    let listener = reactor.listen("127.0.0.1:0").unwrap();
    let addr = reactor.local_addr(listener).unwrap();
    let connected = (0..clients)
        .map_while(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok())
        .collect();
    (reactor, connected)
}

/// The seed listens with a backlog of five: a burst that arrives while its
/// loop is busy elsewhere finds the kernel's queue full, and the rest of
/// the burst is dropped. Shown here with the same backlog.
fn a_backlog_of_five_drops_a_burst_that_arrives_while_not_accepting(backend: BackendKind) {
    let (_reactor, connected) = burst_while_not_accepting(backend, Some(5), 20);
    assert!(
        connected.len() < 20,
        "all 20 connected with a backlog of 5: the kernel queued more than asked"
    );
}
per_backend!(a_backlog_of_five_drops_a_burst_that_arrives_while_not_accepting);

/// With the default backlog (1024) a burst of 300 connections that arrive
/// while the loop is not accepting all complete, and each is then accepted
/// and greeted.
fn burst_of_connections_beyond_a_backlog_of_five_is_accepted(backend: BackendKind) {
    let (mut reactor, mut clients) = burst_while_not_accepting(backend, None, 300);
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
per_backend_many!(burst_of_connections_beyond_a_backlog_of_five_is_accepted);
