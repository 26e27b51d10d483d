//! Limits of `Config`, each hit on purpose: the connection cap, the hard
//! output limit, handler panics, and the idle and message deadlines.

use crate::util;

use util::BackendKind;

use std::io::Read;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use selectloop::codec::{Chunks, Lines};
use selectloop::{Config, ConnId, Context, Handler, Reactor};
use util::{connect, read_n, write_all, Echo, Respond, Server, GREETING};

fn connections_over_the_cap_get_the_reject_message_and_others_are_unaffected(backend: BackendKind) {
    let config = Config::new()
        .backend(backend)
        .codec(Chunks::new(1024))
        .max_connections(5)
        .reject_message("-ERR max clients reached\r\n");
    let server = Server::start(config, Respond);
    let mut admitted: Vec<TcpStream> = (0..5).map(|_| connect(server.addr)).collect();
    for client in &mut admitted {
        assert_eq!(read_n(client, GREETING.len()), GREETING);
    }
    for _ in 0..3 {
        let mut refused = connect(server.addr);
        let got = util::read_to_end(&mut refused).unwrap_or_default();
        assert_eq!(got, b"-ERR max clients reached\r\n");
    }
    let stats = server.wait_for("three rejections", |s| s.rejected == 3);
    assert_eq!(stats.accepted, 5);
    for (i, client) in admitted.iter_mut().enumerate() {
        let msg = format!("still served {i}");
        write_all(client, msg.as_bytes());
        let expect = format!("response: {msg}");
        assert_eq!(read_n(client, expect.len()), expect.as_bytes());
    }
    // A place freed is a place taken.
    drop(admitted.pop());
    server.wait_for("a close", |s| s.closed == 1);
    let mut late = connect(server.addr);
    assert_eq!(read_n(&mut late, GREETING.len()), GREETING);
}
per_backend!(connections_over_the_cap_get_the_reject_message_and_others_are_unaffected);

#[cfg(unix)]
#[test]
fn the_cap_never_exceeds_the_descriptor_limit() {
    let reactor = Reactor::with_config(Config::new().max_connections(usize::MAX)).unwrap();
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only into the struct given.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    #[allow(clippy::unnecessary_cast)]
    let soft = limit.rlim_cur as u64;
    assert!(reactor.max_connections() as u64 <= soft.saturating_sub(32));
}

/// Panics on the message `poison`.
struct Fragile;

impl Handler for Fragile {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
        if msg == b"poison" {
            panic!("handler cannot digest {:?}", String::from_utf8_lossy(msg));
        }
        cx.send_frame(conn, msg).unwrap();
    }
}

fn handler_panic_closes_only_the_connection_it_served(backend: BackendKind) {
    let server = Server::start(
        Config::new().backend(backend).codec(Lines::new(64)),
        Fragile,
    );
    let mut good = connect(server.addr);
    let mut bad = connect(server.addr);
    write_all(&mut good, b"before\n");
    assert_eq!(read_n(&mut good, 7), b"before\n");
    write_all(&mut bad, b"poison\nnever answered\n");
    let rest = util::read_to_end(&mut bad).unwrap_or_default();
    assert!(rest.is_empty(), "{rest:?}");
    let stats = server.wait_for("the panic kick", |s| s.panic_kicks == 1);
    assert_eq!(stats.handler_panics, 1);
    write_all(&mut good, b"after\n");
    assert_eq!(read_n(&mut good, 6), b"after\n");
}
per_backend!(handler_panic_closes_only_the_connection_it_served);

#[test]
fn handler_panic_propagates_when_not_caught() {
    util::init_logger();
    let mut reactor =
        Reactor::with_config(Config::new().codec(Lines::new(64)).catch_panics(false)).unwrap();
    let listener = reactor.listen("127.0.0.1:0").unwrap();
    let mut client = connect(reactor.local_addr(listener).unwrap());
    write_all(&mut client, b"poison\n");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for _ in 0..1000 {
            reactor
                .run_once(&mut Fragile, Some(Duration::from_millis(5)))
                .unwrap();
        }
    }));
    assert!(outcome.is_err(), "the panic should have reached the caller");
    // The turn it unwound out of lost its work lists: the reactor says so
    // instead of serving some connections and forgetting others.
    let refused = reactor
        .run_once(&mut Fragile, Some(Duration::ZERO))
        .expect_err("a reactor whose turn panicked must not run again");
    assert!(refused.to_string().contains("catch_panics"), "{refused}");
}

fn idle_connections_are_closed_after_the_timeout_and_never_before(backend: BackendKind) {
    let idle = Duration::from_millis(300);
    let server = Server::start(
        Config::new()
            .backend(backend)
            .codec(Lines::new(64))
            .idle_timeout(idle),
        Echo::default(),
    );
    let started = Instant::now();
    let mut silent = connect(server.addr);
    let mut chatty = connect(server.addr);
    let chatter = thread::spawn(move || {
        for i in 0..8 {
            let msg = format!("{i}\n");
            write_all(&mut chatty, msg.as_bytes());
            assert_eq!(read_n(&mut chatty, msg.len()), msg.as_bytes());
            thread::sleep(Duration::from_millis(100));
        }
        chatty
    });
    let mut byte = [0u8; 1];
    let n = silent.read(&mut byte).unwrap_or(0);
    let elapsed = started.elapsed();
    assert_eq!(n, 0, "the idle connection should see end of file");
    assert!(
        elapsed >= idle,
        "closed after {elapsed:?}, before the timeout"
    );
    let _chatty = chatter
        .join()
        .expect("the active client was served throughout");
    let stats = server.stats();
    assert_eq!(stats.idle_kicks, 1);
}
per_backend!(idle_connections_are_closed_after_the_timeout_and_never_before);

/// Answers `download` with [`DOWNLOAD`] bytes (in 3 MiB sends, under the
/// default output limit), `patient` by lifting the idle timeout of its
/// connection, `hurry` by giving its connection a message deadline, and
/// echoes anything else.
struct Transfers;

const DOWNLOAD: usize = 24 * 1024 * 1024;

impl Handler for Transfers {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
        match msg {
            b"download" => {
                for piece in 0..DOWNLOAD / (3 << 20) {
                    cx.send(conn, &vec![b'a' + piece as u8; 3 << 20]).unwrap();
                }
            }
            b"patient" => {
                assert!(cx.set_idle_timeout(conn, None));
                cx.send_frame(conn, b"no idle timeout").unwrap();
            }
            b"hurry" => {
                assert!(cx.set_message_deadline(conn, Some(Duration::from_millis(300))));
                cx.send_frame(conn, b"300 ms a message").unwrap();
            }
            _ => cx.send_frame(conn, msg).unwrap(),
        }
    }
}

/// Idle means no byte moved either way, not no message completed: a
/// message uploaded slowly, or an answer downloaded slowly, takes many
/// idle periods and is not cut off (before, both were closed after one).
fn slow_uploads_and_downloads_are_not_idle(backend: BackendKind) {
    // Long enough that a busy machine's scheduling pauses do not look idle.
    let idle = Duration::from_millis(700);
    let server = Server::start(
        Config::new()
            .backend(backend)
            .codec(Lines::new(1 << 20))
            .idle_timeout(idle),
        Transfers,
    );
    // The upload and the download run side by side: each lasts several
    // idle timeouts.
    let addr = server.addr;
    let upload = thread::spawn(move || {
        // 20,000 bytes, 200 every 30 ms: three seconds for one message.
        let mut uploader = connect(addr);
        let line: Vec<u8> = (0..20_000).map(|i| b'a' + (i % 26) as u8).collect();
        for piece in line.chunks(200) {
            write_all(&mut uploader, piece);
            thread::sleep(Duration::from_millis(30));
        }
        write_all(&mut uploader, b"\n");
        assert_eq!(
            read_n(&mut uploader, line.len() + 1),
            [&line[..], b"\n"].concat()
        );
    });
    // 24 MiB read 512 KiB every 50 ms: 2.4 seconds, most of it waiting in
    // the loop's output (the socket buffers hold a few MiB).
    let mut downloader = connect(server.addr);
    write_all(&mut downloader, b"download\n");
    let mut got = vec![0u8; DOWNLOAD];
    for chunk in got.chunks_mut(512 * 1024) {
        downloader.read_exact(chunk).expect("the download goes on");
        thread::sleep(Duration::from_millis(50));
    }
    let expected = (0..DOWNLOAD / (3 << 20)).all(|piece| {
        got[piece * (3 << 20)..(piece + 1) * (3 << 20)]
            .iter()
            .all(|&b| b == b'a' + piece as u8)
    });
    assert!(expected, "the download arrived whole and in order");
    upload.join().expect("the upload goes on");
    // A silent client still goes, after the timeout and not before.
    let started = Instant::now();
    let mut silent = connect(server.addr);
    let mut byte = [0u8; 1];
    assert_eq!(silent.read(&mut byte).unwrap_or(0), 0);
    assert!(started.elapsed() >= idle);
}
per_backend!(slow_uploads_and_downloads_are_not_idle);

/// A handler gives one connection its own timeouts: `patient` is never
/// idle while its neighbour is closed, `hurry` gets a message deadline on a
/// server configured with none.
fn a_handler_sets_one_connection_s_timeouts(backend: BackendKind) {
    let idle = Duration::from_millis(200);
    let server = Server::start(
        Config::new()
            .backend(backend)
            .codec(Lines::new(1024))
            .idle_timeout(idle),
        Transfers,
    );
    let mut patient = connect(server.addr);
    write_all(&mut patient, b"patient\n");
    assert_eq!(read_n(&mut patient, 16), b"no idle timeout\n");
    let mut neighbour = connect(server.addr);
    let mut byte = [0u8; 1];
    assert_eq!(
        neighbour.read(&mut byte).unwrap_or(0),
        0,
        "the neighbour is idle"
    );
    thread::sleep(idle * 2);
    write_all(&mut patient, b"still here\n");
    assert_eq!(read_n(&mut patient, 11), b"still here\n");
    assert_eq!(server.stats().idle_kicks, 1);

    // A server configured with no timeouts at all: the handler's deadline
    // for one connection starts the loop's sweeps by itself.
    let untimed = Server::start(
        Config::new().backend(backend).codec(Lines::new(1024)),
        Transfers,
    );
    let mut hurried = connect(untimed.addr);
    write_all(&mut hurried, b"hurry\n");
    assert_eq!(read_n(&mut hurried, 17), b"300 ms a message\n");
    // A byte every 50 ms: never idle, but the message is not whole in time.
    let started = Instant::now();
    while untimed.stats().deadline_kicks == 0 {
        assert!(started.elapsed() < util::PATIENCE, "never cut off");
        let _ = std::io::Write::write(&mut hurried, b"z");
        thread::sleep(Duration::from_millis(50));
    }
    assert!(started.elapsed() >= Duration::from_millis(300));
    write_all(&mut patient, b"served\n");
    assert_eq!(read_n(&mut patient, 7), b"served\n");
}
per_backend!(a_handler_sets_one_connection_s_timeouts);

/// Answers `burst` with ten small replies and then one larger than the
/// output limit, all in the same turn.
struct Burst;

const LIMIT: usize = 64 * 1024;

impl Handler for Burst {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
        if msg == b"burst" {
            for i in 0..10 {
                cx.send(conn, format!("small {i}\n").as_bytes()).unwrap();
            }
            cx.send(conn, &vec![b'L'; 4 * LIMIT]).unwrap();
            cx.send(conn, b"\nafter\n").unwrap();
        }
    }
}

/// One reply larger than `max_output` goes out whole, after the smaller
/// ones queued before it (before, the send closed the connection and
/// dropped them all); the limit still cuts off a backlog left unread (the
/// subscriber tests in tests/memory.rs).
fn one_large_reply_does_not_lose_the_ones_queued_before_it(backend: BackendKind) {
    let server = Server::start(
        Config::new()
            .backend(backend)
            .codec(Lines::new(64))
            .max_output(LIMIT),
        Burst,
    );
    let mut client = connect(server.addr);
    write_all(&mut client, b"burst\n");
    let small: String = (0..10).map(|i| format!("small {i}\n")).collect();
    assert_eq!(read_n(&mut client, small.len()), small.as_bytes());
    assert!(read_n(&mut client, 4 * LIMIT).iter().all(|&b| b == b'L'));
    assert_eq!(read_n(&mut client, 7), b"\nafter\n");
    assert_eq!(server.stats().output_limit_kicks, 0);
}
per_backend!(one_large_reply_does_not_lose_the_ones_queued_before_it);

fn slowloris_clients_are_closed_by_the_message_deadline_while_others_are_served(
    backend: BackendKind,
) {
    const SLOW: usize = 100;
    let deadline = Duration::from_secs(1);
    let server = Server::start(
        Config::new()
            .backend(backend)
            .codec(Lines::new(1024))
            .message_deadline(deadline),
        Echo::default(),
    );
    let mut slow: Vec<TcpStream> = (0..SLOW).map(|_| connect(server.addr)).collect();
    let addr = server.addr;
    let normal: Vec<_> = (0..10)
        .map(|i| {
            thread::spawn(move || {
                let mut client = connect(addr);
                let until = Instant::now() + Duration::from_millis(1500);
                let mut rounds = 0;
                while Instant::now() < until {
                    let msg = format!("client {i} round {rounds}\n");
                    write_all(&mut client, msg.as_bytes());
                    assert_eq!(read_n(&mut client, msg.len()), msg.as_bytes());
                    rounds += 1;
                    thread::sleep(Duration::from_millis(20));
                }
                rounds
            })
        })
        .collect();
    // One byte every 200 ms on each slow connection, never a newline.
    let started = Instant::now();
    while server.stats().deadline_kicks < SLOW as u64 {
        assert!(
            started.elapsed() < util::PATIENCE,
            "slow clients not closed"
        );
        for client in &mut slow {
            let _ = std::io::Write::write(client, b"z");
        }
        thread::sleep(Duration::from_millis(200));
    }
    assert!(started.elapsed() >= deadline, "kicked before the deadline");
    for handle in normal {
        assert!(handle.join().expect("normal client served") > 0);
    }
    let stats = server.stats();
    assert_eq!(stats.deadline_kicks, SLOW as u64);
    // The normal clients closed themselves when done; nobody else was kicked.
    assert_eq!(
        stats.closed - stats.closed_by_peer,
        SLOW as u64,
        "only the slow clients were kicked"
    );
}
per_backend!(slowloris_clients_are_closed_by_the_message_deadline_while_others_are_served);
