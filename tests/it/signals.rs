//! Signals on the loop: caught with `Reactor::catch_signals` (or a group's
//! `run_until_signal`), handed to `Handler::on_signal` between turns; by
//! default SIGINT and SIGTERM shut the loop down gracefully.
//!
//! The one signal raised in the test process is SIGUSR1, which nothing else
//! here catches or sends (a stop signal caught once would be ignored by the
//! test process afterwards); SIGTERM's path is driven through
//! `Handle::signal`, and for real against example servers, here and in
//! tests/it/shutdown.rs.

use crate::util;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use selectloop::{Config, ConnId, Context, Handler, Reactor, Signal};
use util::{connect, PATIENCE};

/// Echoes lines, and writes down the signals it hears.
#[derive(Default)]
struct Listens {
    heard: Arc<Mutex<Vec<Signal>>>,
}

impl Handler for Listens {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
        let _ = cx.send_parts(conn, &[msg, b"\n"]);
    }

    fn on_signal(&mut self, cx: &mut Context<'_>, signal: Signal) {
        self.heard.lock().unwrap().push(signal);
        if signal.is_stop() {
            cx.shutdown(Duration::from_secs(5));
        }
    }
}

/// A signal sent to the process reaches `on_signal` on the loop's thread,
/// and one the reactor does not catch does not.
#[test]
fn a_caught_signal_reaches_the_handler_on_the_loop() {
    util::init_logger();
    let mut reactor = Reactor::new().unwrap();
    reactor.catch_signals(&[Signal::User1]).unwrap();
    let mut handler = Listens::default();
    let heard = handler.heard.clone();
    signal_hook::low_level::raise(libc::SIGUSR1).unwrap();
    let started = Instant::now();
    while heard.lock().unwrap().is_empty() {
        assert!(started.elapsed() < PATIENCE, "the signal was not heard");
        reactor
            .run_once(&mut handler, Some(Duration::from_millis(10)))
            .unwrap();
    }
    assert_eq!(heard.lock().unwrap().as_slice(), [Signal::User1]);
    // Once more, heard once more: the pipe was drained, the flag reset.
    signal_hook::low_level::raise(libc::SIGUSR1).unwrap();
    while heard.lock().unwrap().len() < 2 {
        assert!(started.elapsed() < PATIENCE, "the second was not heard");
        reactor
            .run_once(&mut handler, Some(Duration::from_millis(10)))
            .unwrap();
    }
    assert_eq!(heard.lock().unwrap().as_slice(), [Signal::User1; 2]);
}

/// The default `on_signal`: SIGTERM makes `run` answer what was sent,
/// close every connection, and return.
#[test]
fn the_default_on_sigterm_is_a_graceful_shutdown() {
    util::init_logger();
    struct Echo;
    impl Handler for Echo {
        fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
            let _ = cx.send_parts(conn, &[msg, b"\n"]);
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let served = thread::spawn(move || {
        let config = Config::new().shutdown_grace(Duration::from_secs(5));
        let mut reactor = Reactor::with_config(config).unwrap();
        let listener = reactor.listen("127.0.0.1:0").unwrap();
        let addr = reactor.local_addr(listener).unwrap();
        tx.send((addr, reactor.handle().unwrap())).unwrap();
        let started = Instant::now();
        reactor.run(&mut Echo).unwrap();
        (started.elapsed(), reactor.stats())
    });
    let (addr, handle) = rx.recv_timeout(PATIENCE).unwrap();
    let mut client = connect(addr);
    client.write_all(b"last words\n").unwrap();
    let mut answer = [0u8; 11];
    client.read_exact(&mut answer).unwrap();
    handle.signal(Signal::Terminate).unwrap();
    // Closed by the server once drained: end of input, well within grace.
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    let (took, stats) = served.join().unwrap();
    assert_eq!(&answer, b"last words\n");
    assert!(rest.is_empty());
    assert!(took < Duration::from_secs(5), "run returned after {took:?}");
    assert_eq!(stats.closed, 1);
}

/// A group passes SIGHUP to every loop's handler and goes on serving; on
/// SIGTERM, `run_until_signal` shuts every loop down and the process
/// exits 0. (The example's handler keeps the default `on_signal`; the
/// loop logs each signal it is handed.)
#[test]
fn a_group_passes_sighup_to_every_loop_and_stops_on_sigterm() {
    let server = util::start_example_with("echo_server", &["--threads", "2"], |command| {
        command.env("RUST_LOG", "selectloop=info");
    });
    let pid = server.child.id() as libc::pid_t;
    // SAFETY: a signal to the child this test started.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    let started = Instant::now();
    while server.log().matches("caught Hangup").count() < 2 {
        assert!(
            started.elapsed() < PATIENCE,
            "both loops hear the hangup: {}",
            server.log()
        );
        thread::sleep(Duration::from_millis(10));
    }
    let mut client = connect(server.addr);
    client.write_all(b"still here\n").unwrap();
    let mut answer = [0u8; 11];
    client.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"still here\n");
    drop(client);
    let mut server = server;
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = util::wait_until("the group to exit", || {
        server.child.try_wait().ok().flatten()
    });
    assert!(status.success(), "{status:?}\n{}", server.log());
    assert_eq!(
        server.log().matches("caught Hangup").count(),
        2,
        "once each"
    );
}
