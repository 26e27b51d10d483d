//! The loop from other threads: the handle and the worker pool.

use crate::util;

use util::BackendKind;

use std::collections::HashMap;
use std::io::Read;
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use selectloop::codec::Lines;
use selectloop::{Config, ConnId, Context, Handle, HandleError, Handler, Reactor, Stats};
use util::{connect, write_all, PATIENCE};

/// Reports each new connection's id to the test (and, if asked, each
/// close), then serves nothing.
struct Registrar(mpsc::Sender<ConnId>, Option<mpsc::Sender<ConnId>>);

impl Handler for Registrar {
    fn on_connect(&mut self, _cx: &mut Context<'_>, conn: ConnId) {
        self.0.send(conn).unwrap();
    }
    fn on_message(&mut self, _cx: &mut Context<'_>, _conn: ConnId, _msg: &[u8]) {}
    fn on_close(&mut self, _cx: &mut Context<'_>, conn: ConnId, _reason: &selectloop::CloseReason) {
        if let Some(closes) = &self.1 {
            closes.send(conn).unwrap();
        }
    }
}

/// A reactor on its own thread, with its handle; the thread returns the
/// counters when `run` ends.
fn spawn<H: Handler + Send + 'static>(
    config: Config,
    handler: H,
) -> (std::net::SocketAddr, Handle, thread::JoinHandle<Stats>) {
    util::init_logger();
    let (tx, rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        let mut handler = handler;
        let mut reactor = Reactor::with_config(config).unwrap();
        let listener = reactor.listen("127.0.0.1:0").unwrap();
        tx.send((
            reactor.local_addr(listener).unwrap(),
            reactor.handle().unwrap(),
        ))
        .unwrap();
        reactor.run(&mut handler).unwrap();
        reactor.stats()
    });
    let (addr, handle) = rx.recv_timeout(PATIENCE).unwrap();
    (addr, handle, thread)
}

fn eight_threads_send_80_000_messages_through_the_handle_in_order(backend: BackendKind) {
    const THREADS: usize = 8;
    const SENDS: usize = 10_000;
    let (ids_tx, ids_rx) = mpsc::channel();
    let (addr, handle, looper) = spawn(
        Config::new().backend(backend).codec(Lines::new(64)),
        Registrar(ids_tx, None),
    );
    let mut clients: Vec<TcpStream> = (0..THREADS).map(|_| connect(addr)).collect();
    let ids: Vec<ConnId> = (0..THREADS)
        .map(|_| ids_rx.recv_timeout(PATIENCE).unwrap())
        .collect();
    // Which client is which connection: ask each id to say its index.
    let mut by_index = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        handle.send(*id, format!("{i}\n")).unwrap();
    }
    for (c, client) in clients.iter_mut().enumerate() {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while byte[0] != b'\n' {
            client.read_exact(&mut byte).unwrap();
            line.push(byte[0]);
        }
        let i: usize = String::from_utf8(line).unwrap().trim().parse().unwrap();
        by_index.insert(c, ids[i]);
    }
    let senders: Vec<_> = (0..THREADS)
        .map(|c| {
            let handle = handle.clone();
            let id = by_index[&c];
            thread::spawn(move || {
                for seq in 0..SENDS {
                    // The queue is bounded: a sender faster than the loop
                    // is told, and waits its turn (bounded by PATIENCE).
                    let give_up = std::time::Instant::now() + PATIENCE;
                    while let Err(e) = handle.send(id, format!("{c}:{seq}\n")) {
                        assert_eq!(e, HandleError::QueueFull);
                        assert!(std::time::Instant::now() < give_up, "queue never drained");
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    let readers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(c, mut client)| {
            thread::spawn(move || {
                let expected: Vec<u8> = (0..SENDS)
                    .flat_map(|seq| format!("{c}:{seq}\n").into_bytes())
                    .collect();
                let mut got = vec![0u8; expected.len()];
                client.read_exact(&mut got).unwrap();
                assert!(got == expected, "client {c}: bytes missing or out of order");
            })
        })
        .collect();
    for sender in senders {
        sender.join().unwrap();
    }
    for reader in readers {
        reader.join().unwrap();
    }
    handle.stop().unwrap();
    let stats = looper.join().unwrap();
    let commands = (THREADS * SENDS + THREADS + 1) as u64;
    assert_eq!(stats.handle_commands, commands);
    eprintln!(
        "{} commands, {} wake-ups",
        stats.handle_commands, stats.handle_wakeups
    );
    assert!(
        stats.handle_wakeups * 4 < stats.handle_commands,
        "{} wake-ups for {} commands",
        stats.handle_wakeups,
        stats.handle_commands
    );
    // The loop is gone: the handle says so rather than blocking or panicking.
    assert_eq!(handle.send(ids[0], "late"), Err(HandleError::LoopGone));
}
per_backend!(eight_threads_send_80_000_messages_through_the_handle_in_order);

fn commands_for_closed_connections_are_counted_not_fatal(backend: BackendKind) {
    let (ids_tx, ids_rx) = mpsc::channel();
    let (closes_tx, closes_rx) = mpsc::channel();
    let (addr, handle, looper) = spawn(
        Config::new().backend(backend),
        Registrar(ids_tx, Some(closes_tx)),
    );
    let client = connect(addr);
    let id = ids_rx.recv_timeout(PATIENCE).unwrap();
    drop(client);
    // Once the loop has seen the close, aim at the dead connection.
    assert_eq!(closes_rx.recv_timeout(PATIENCE).unwrap(), id);
    handle.send(id, "anyone?").unwrap();
    handle.close(id).unwrap();
    handle.run(|cx| cx.stop()).unwrap();
    let stats = looper.join().unwrap();
    assert_eq!(stats.handle_undelivered, 2);
}
per_backend!(commands_for_closed_connections_are_counted_not_fatal);

fn graceful_shutdown_through_the_handle(backend: BackendKind) {
    let (ids_tx, ids_rx) = mpsc::channel();
    let (addr, handle, looper) = spawn(Config::new().backend(backend), Registrar(ids_tx, None));
    let mut client = connect(addr);
    let id = ids_rx.recv_timeout(PATIENCE).unwrap();
    handle.send(id, "bye\n").unwrap();
    handle.shutdown(Duration::from_secs(1)).unwrap();
    let rest = util::read_to_end(&mut client).unwrap();
    assert_eq!(rest, b"bye\n");
    let stats = looper.join().unwrap();
    assert_eq!(stats.shutdown_closes, 1);
}
per_backend!(graceful_shutdown_through_the_handle);

/// `work N` asks the pool for a slow answer; `ping` is answered on the loop.
/// `ordered` selects `submit_ordered`.
struct Jobs {
    ordered: bool,
}

fn slow_square(n: u64) -> u64 {
    // Later requests finish sooner, so unordered results would overtake.
    thread::sleep(Duration::from_millis(5 - n % 5));
    n * n
}

impl Handler for Jobs {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
        let text = String::from_utf8_lossy(msg).to_string();
        if let Some(n) = text.strip_prefix("work ") {
            let n: u64 = n.parse().unwrap();
            let done = move |cx: &mut Context<'_>, conn: ConnId, square: u64| {
                cx.send_frame(conn, format!("{n}^2={square}").as_bytes())
                    .unwrap();
            };
            let submitted = if self.ordered {
                cx.submit_ordered(conn, move || slow_square(n), done)
            } else {
                cx.submit(conn, move || slow_square(n), done)
            };
            if let Err(e) = submitted {
                cx.send_frame(conn, format!("rejected: {e}").as_bytes())
                    .unwrap();
            }
        } else {
            cx.send_frame(conn, b"pong").unwrap();
        }
    }
}

fn a_thousand_jobs_from_100_connections_come_back_in_order_to_the_right_connection(
    backend: BackendKind,
) {
    let config = Config::new()
        .backend(backend)
        .codec(Lines::new(64))
        .workers(4);
    let (addr, handle, looper) = spawn(config, Jobs { ordered: true });
    let clients: Vec<_> = (0..100)
        .map(|c| {
            thread::spawn(move || {
                let mut client = connect(addr);
                let mut sent = Vec::new();
                let mut expected = Vec::new();
                for k in 0..10u64 {
                    let n = c as u64 * 10 + k;
                    sent.extend_from_slice(format!("work {n}\n").as_bytes());
                    expected.extend_from_slice(format!("{n}^2={}\n", n * n).as_bytes());
                }
                write_all(&mut client, &sent);
                let got = util::read_n(&mut client, expected.len());
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&expected)
                );
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client");
    }
    handle.stop().unwrap();
    let stats = looper.join().unwrap();
    assert_eq!(stats.jobs_submitted, 1000);
    assert_eq!(stats.jobs_done, 1000);
}
per_backend_many!(a_thousand_jobs_from_100_connections_come_back_in_order_to_the_right_connection);

fn a_job_whose_connection_closed_is_dropped_and_counted(backend: BackendKind) {
    let config = Config::new()
        .backend(backend)
        .codec(Lines::new(64))
        .workers(1);
    let (addr, handle, looper) = spawn(config, Jobs { ordered: false });
    let mut client = connect(addr);
    write_all(&mut client, b"work 1\n");
    drop(client);
    // The job (20 ms) finishes after the close; wait until its result came
    // back and was dropped.
    util::wait_until("the job's result to be dropped", || {
        let (tx, rx) = std::sync::mpsc::channel();
        handle
            .run(move |cx| {
                let _ = tx.send(cx.stats().jobs_dropped);
            })
            .unwrap();
        rx.recv_timeout(PATIENCE)
            .ok()
            .filter(|&dropped| dropped == 1)
    });
    handle.stop().unwrap();
    let stats = looper.join().unwrap();
    assert_eq!(stats.jobs_submitted, 1);
    assert_eq!(stats.jobs_dropped, 1);
    assert_eq!(stats.jobs_done, 0);
}
per_backend!(a_job_whose_connection_closed_is_dropped_and_counted);

fn a_full_job_queue_is_reported_and_the_loop_keeps_serving(backend: BackendKind) {
    let config = Config::new()
        .backend(backend)
        .codec(Lines::new(64))
        .workers(1)
        .job_queue(2);
    let (addr, handle, looper) = spawn(config, Jobs { ordered: false });
    let mut client = connect(addr);
    let burst: String = (0..10).map(|n| format!("work {n}\n")).collect();
    write_all(&mut client, burst.as_bytes());
    write_all(&mut client, b"ping\n");
    let mut answers = Vec::new();
    let mut reader = std::io::BufReader::new(client.try_clone().unwrap());
    // The pong and the rejections come at once; the accepted jobs later.
    while !answers.iter().any(|a: &String| a == "pong") {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
        answers.push(line.trim().to_string());
    }
    let rejected = answers.iter().filter(|a| a.starts_with("rejected")).count();
    assert!(rejected >= 5, "answers before the pong: {answers:?}");
    handle.stop().unwrap();
    let stats = looper.join().unwrap();
    assert_eq!(stats.jobs_rejected as usize, rejected);
}
per_backend!(a_full_job_queue_is_reported_and_the_loop_keeps_serving);

/// The handles' queue was unbounded: a thread could queue without limit.
/// Past `Config::handle_queue` commands, sending fails at once, and works
/// again once the loop has taken them.
fn a_full_handle_queue_is_reported_instead_of_growing(backend: BackendKind) {
    util::init_logger();
    let mut reactor = Reactor::with_config(Config::new().backend(backend).handle_queue(4)).unwrap();
    let handle = reactor.handle().unwrap();
    for _ in 0..4 {
        handle.notify(()).unwrap();
    }
    assert_eq!(handle.notify(()), Err(HandleError::QueueFull));
    let mut handler = |_: &mut Context<'_>, _: ConnId, _: &[u8]| {};
    reactor
        .run_once(&mut handler, Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(reactor.stats().handle_commands, 4);
    handle
        .notify(())
        .expect("room again once the loop took them");
}
per_backend!(a_full_handle_queue_is_reported_instead_of_growing);

/// Sends from other threads are bounded in bytes as well as in number: with
/// `handle_queue_bytes` at 4 MiB, a fifth megabyte waits its turn
/// (`QueueFull`) until the loop takes the first four, and nothing is lost
/// or reordered on the way.
#[test]
fn handle_sends_are_bounded_in_bytes_and_resume_once_the_loop_takes_them() {
    util::init_logger();
    const MIB: usize = 1024 * 1024;
    let config = Config::new()
        .handle_queue(1000)
        .handle_queue_bytes(4 * MIB)
        .max_output(64 * MIB);
    let mut reactor = Reactor::with_config(config).unwrap();
    let listener = reactor.listen("127.0.0.1:0").unwrap();
    let addr = reactor.local_addr(listener).unwrap();
    let (conns, accepted) = mpsc::channel();
    let mut handler = Registrar(conns, None);
    let mut client = connect(addr);
    let conn = util::wait_until("the connection", || {
        reactor
            .run_once(&mut handler, Some(Duration::from_millis(10)))
            .unwrap();
        accepted.try_recv().ok()
    });
    let handle = reactor.handle().unwrap();
    let chunk = |i: u8| vec![b'a' + i; MIB];
    // The loop is not running: four megabytes fit, the fifth does not,
    // however few commands are queued; a command with no bytes still does.
    for i in 0..4 {
        handle.send(conn, chunk(i)).unwrap();
    }
    assert_eq!(handle.send(conn, chunk(4)), Err(HandleError::QueueFull));
    assert_eq!(
        handle.send(conn, b"x".to_vec()),
        Err(HandleError::QueueFull)
    );
    let sender = {
        let handle = handle.clone();
        thread::spawn(move || {
            // Retries until the loop has made room.
            for i in 4..8u8 {
                let deadline = std::time::Instant::now() + PATIENCE;
                while handle.send(conn, chunk(i)) == Err(HandleError::QueueFull) {
                    assert!(std::time::Instant::now() < deadline, "never room again");
                    thread::sleep(Duration::from_millis(1));
                }
            }
        })
    };
    let reader = thread::spawn(move || {
        let mut got = vec![0u8; 8 * MIB];
        client.read_exact(&mut got).unwrap();
        got
    });
    let deadline = std::time::Instant::now() + PATIENCE;
    while !sender.is_finished() || reactor.stats().bytes_written < 8 * MIB as u64 {
        assert!(
            std::time::Instant::now() < deadline,
            "the sends never all went out"
        );
        reactor
            .run_once(&mut handler, Some(Duration::from_millis(5)))
            .unwrap();
    }
    sender.join().unwrap();
    let got = reader.join().unwrap();
    for (i, part) in got.chunks(MIB).enumerate() {
        assert!(
            part.iter().all(|&b| b == b'a' + i as u8),
            "megabyte {i} out of order"
        );
    }
}
