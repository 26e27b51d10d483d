//! Graceful shutdown: in process with `Reactor::shutdown`, and as the example
//! servers do it on SIGTERM.

use crate::util;

use util::BackendKind;

use std::io::Read;
#[cfg(unix)]
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use selectloop::codec::Lines;
use selectloop::{Config, ConnId, Context, Handler, Reactor};
#[cfg(unix)]
use util::read_n;
use util::{connect, write_all};

/// Answers `slow` with 8 MiB (more than the socket buffers hold), anything
/// else with an echo.
const SLOW_ANSWER: usize = 8 * 1024 * 1024;

struct Mixed;

impl Handler for Mixed {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
        if msg == b"slow" {
            cx.send(conn, &vec![b's'; SLOW_ANSWER]).unwrap();
        } else {
            cx.send_frame(conn, msg).unwrap();
        }
    }
}

fn shutdown_answers_what_was_sent_then_closes_and_stops_accepting(backend: BackendKind) {
    util::init_logger();
    let mut reactor =
        Reactor::with_config(Config::new().backend(backend).codec(Lines::new(64))).unwrap();
    let listener = reactor.listen("127.0.0.1:0").unwrap();
    let addr = reactor.local_addr(listener).unwrap();
    let mut clients: Vec<TcpStream> = (0..20).map(|_| connect(addr)).collect();
    // Everyone is accepted and has one round trip.
    for (i, client) in clients.iter_mut().enumerate() {
        write_all(client, format!("hello {i}\n").as_bytes());
    }
    let mut handler = Mixed;
    while reactor.stats().messages < 20 {
        reactor
            .run_once(&mut handler, Some(Duration::from_millis(10)))
            .unwrap();
    }
    // Requests sent just before the shutdown; one of them wants a lot back.
    for (i, client) in clients.iter_mut().enumerate() {
        write_all(client, format!("last {i}\n").as_bytes());
    }
    write_all(&mut clients[0], b"slow\n");
    // The slow answer is bigger than the socket buffers: it is written while
    // shutting down, as the client reads it (on another thread).
    let mut first = clients.remove(0);
    let slow_reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        first.read_to_end(&mut all).unwrap();
        all
    });
    reactor
        .shutdown(&mut handler, Duration::from_secs(5))
        .unwrap();
    assert_eq!(reactor.connection_count(), 0);
    assert_eq!(reactor.local_addr(listener), None);

    for (i, client) in clients.iter_mut().enumerate() {
        let i = i + 1;
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, format!("hello {i}\nlast {i}\n").as_bytes());
    }
    let first = slow_reader.join().unwrap();
    assert_eq!(first.len(), "hello 0\nlast 0\n".len() + SLOW_ANSWER);
    let stats = reactor.stats();
    assert_eq!(stats.shutdown_closes, 20);
    // New connections are refused: the listener is gone.
    assert!(TcpStream::connect(addr).is_err());
}
per_backend!(shutdown_answers_what_was_sent_then_closes_and_stops_accepting);

/// A request half received when the shutdown starts is not cut off: its
/// connection waits, within the grace, for the rest, answers it, then
/// closes; the shutdown ends then, not at the end of the grace.
fn shutdown_lets_a_half_received_request_finish(backend: BackendKind) {
    util::init_logger();
    let mut reactor =
        Reactor::with_config(Config::new().backend(backend).codec(Lines::new(64))).unwrap();
    let listener = reactor.listen("127.0.0.1:0").unwrap();
    let addr = reactor.local_addr(listener).unwrap();
    let mut client = connect(addr);
    write_all(&mut client, b"half");
    let mut handler = Mixed;
    let started = Instant::now();
    while reactor.stats().bytes_read < 4 {
        assert!(
            started.elapsed() < util::PATIENCE,
            "the first half never came"
        );
        reactor
            .run_once(&mut handler, Some(Duration::from_millis(10)))
            .unwrap();
    }
    let finisher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        write_all(&mut client, b" and the rest\n");
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).unwrap();
        answer
    });
    let shutdown_started = Instant::now();
    reactor
        .shutdown(&mut handler, Duration::from_secs(20))
        .unwrap();
    let took = shutdown_started.elapsed();
    assert_eq!(finisher.join().unwrap(), b"half and the rest\n");
    assert!(
        took < Duration::from_secs(10),
        "waited out the grace: {took:?}"
    );
}
per_backend!(shutdown_lets_a_half_received_request_finish);

fn shutdown_closes_what_does_not_drain_by_the_deadline(backend: BackendKind) {
    util::init_logger();
    let mut reactor =
        Reactor::with_config(Config::new().backend(backend).codec(Lines::new(64))).unwrap();
    let listener = reactor.listen("127.0.0.1:0").unwrap();
    let mut stuck = connect(reactor.local_addr(listener).unwrap());
    write_all(&mut stuck, b"slow\n"); // 8 MiB answer, never read
    let mut handler = Mixed;
    while reactor.stats().messages < 1 {
        reactor
            .run_once(&mut handler, Some(Duration::from_millis(10)))
            .unwrap();
    }
    let started = Instant::now();
    reactor
        .shutdown(&mut handler, Duration::from_millis(200))
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(200),
        "returned after {took:?}"
    );
    assert!(took < Duration::from_secs(5), "returned after {took:?}");
    assert_eq!(reactor.connection_count(), 0);
    assert_eq!(reactor.stats().shutdown_closes, 1);
}
per_backend!(shutdown_closes_what_does_not_drain_by_the_deadline);

#[cfg(unix)]
/// `kill -TERM` with 500 clients connected, each with an answer pending:
/// every answer arrives, then end of file, and the process exits 0 quickly.
fn sigterm_with_500_connections_delivers_pending_answers_and_exits_0(backend: BackendKind) {
    sigterm_delivers_pending_answers(&["--backend", backend.name()], 500);
}
#[cfg(unix)]
per_backend_many!(sigterm_with_500_connections_delivers_pending_answers_and_exits_0);

#[cfg(unix)]
/// The same with three reactors (`--threads 3`), under each balance, and
/// 200 clients: the signal drains every loop.
fn sigterm_drains_every_loop_of_a_group(backend: BackendKind) {
    for balance in ["reuseport", "acceptor"] {
        sigterm_delivers_pending_answers(
            &[
                "--backend",
                backend.name(),
                "--threads",
                "3",
                "--balance",
                balance,
            ],
            200,
        );
    }
}
#[cfg(unix)]
per_backend_many!(sigterm_drains_every_loop_of_a_group);

#[cfg(unix)]
fn sigterm_delivers_pending_answers(args: &[&str], clients: usize) {
    util::raise_fd_limit(2 * clients as u64 + 256);
    let mut all = vec!["--codec", "lines"];
    all.extend_from_slice(args);
    let mut server = util::start_example("echo_server", &all);
    let mut clients: Vec<TcpStream> = (0..clients).map(|_| connect(server.addr)).collect();
    // A first round trip each: every client is accepted.
    for (i, client) in clients.iter_mut().enumerate() {
        write_all(client, format!("first {i}\n").as_bytes());
    }
    for (i, client) in clients.iter_mut().enumerate() {
        let expect = format!("first {i}\n");
        assert_eq!(read_n(client, expect.len()), expect.as_bytes());
    }
    // The second request of each is on its way when the signal comes.
    for (i, client) in clients.iter_mut().enumerate() {
        client
            .write_all(format!("second {i}\n").as_bytes())
            .unwrap();
    }
    let signalled = Instant::now();
    // SAFETY: kill has no memory preconditions; the pid is our child's.
    assert_eq!(
        unsafe { libc::kill(server.child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    for (i, client) in clients.iter_mut().enumerate() {
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).expect("read to end");
        assert_eq!(
            rest,
            format!("second {i}\n").as_bytes(),
            "client {i}, {args:?}"
        );
    }
    let status = util::wait_until("the server to exit", || server.child.try_wait().unwrap());
    let took = signalled.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        took < Duration::from_secs(1),
        "exited {took:?} after SIGTERM ({args:?})"
    );
}
