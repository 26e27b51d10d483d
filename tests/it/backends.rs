//! The same loop on each backend: edge-triggered mio (epoll) and
//! level-triggered `poll(2)` and `select(2)`. Level-triggered polling reports a descriptor
//! for as long as it is ready, so every state in which the loop ignores
//! readiness on purpose (reading paused, input ended with output still
//! owed) must remove the interest, or the loop would spin. The counters
//! tell: a spinning loop takes thousands of events a second.

use crate::util;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use selectloop::backend::BackendKind;
use selectloop::codec::Lines;
use selectloop::{Config, ConnId, Context, Handler, Reactor};
use util::{connect, read_n, write_all, Echo, Server};

const KINDS: [BackendKind; 3] = [BackendKind::Epoll, BackendKind::Poll, BackendKind::Select];

fn config(kind: BackendKind) -> Config {
    Config::new().codec(Lines::new(1024)).backend(kind)
}

/// Events the loop took over `window` while nothing should happen.
fn events_while_quiet(server: &Server, window: Duration) -> u64 {
    let before = server.stats().events;
    std::thread::sleep(window);
    server.stats().events - before
}

/// Fifty clients, twenty rounds of a line each, every answer checked.
fn fifty_clients_echo(server: &Server, what: &str) {
    let mut clients: Vec<_> = (0..50).map(|_| connect(server.addr)).collect();
    for round in 0..20 {
        for (i, client) in clients.iter_mut().enumerate() {
            write_all(client, format!("{i}:{round}\n").as_bytes());
        }
        for (i, client) in clients.iter_mut().enumerate() {
            let expected = format!("{i}:{round}\n");
            assert_eq!(
                read_n(client, expected.len()),
                expected.as_bytes(),
                "{what}"
            );
        }
    }
}

#[test]
fn fifty_clients_echo_on_every_backend() {
    let _low = util::few_descriptors();
    for kind in KINDS {
        let server = Server::start(config(kind), Echo::default());
        fifty_clients_echo(&server, &format!("{kind:?}"));
        let stats = server.stop();
        assert_eq!(stats.messages, 50 * 20, "{kind:?}");
    }
}

/// io_uring's readiness half alone: what a kernel without provided-buffer
/// rings (before 5.19) gets, and what `UringBackend::new` given to
/// `Reactor::with_backend` builds. The connections are then polled (a
/// multishot poll each) and read and written by the loop, not served by
/// completions; the same echo comes back.
#[cfg(target_os = "linux")]
#[test]
fn io_uring_readiness_alone_serves_connections_by_polls() {
    use selectloop::backend::UringBackend;
    let server = Server::start_on(
        || {
            let backend = UringBackend::new(64).expect("io_uring on this kernel");
            Reactor::with_backend(config(BackendKind::Uring), Box::new(backend))
        },
        Echo::default(),
    );
    fifty_clients_echo(&server, "io_uring's polls");
    // A burst larger than a turn's read budget and the socket buffers,
    // read only once the server's writes have blocked: its interest
    // changes (write, then read again) go through the ring's polls.
    let line = format!("{}\n", "x".repeat(1000));
    let burst = line.repeat(8000);
    let mut client = connect(server.addr);
    let writer = {
        let mut client = client.try_clone().unwrap();
        let burst = burst.clone();
        std::thread::spawn(move || write_all(&mut client, burst.as_bytes()))
    };
    server.wait_for("a blocked write", |s| s.writes_blocked > 0);
    assert_eq!(read_n(&mut client, burst.len()), burst.as_bytes());
    writer.join().unwrap();
    let stats = server.stop();
    assert_eq!(stats.messages, 50 * 20 + 8000);
    assert!(stats.budget_exhausted > 0, "{stats:?}");
}

/// Pauses reading on `pause`, and never resumes.
struct Pauser;

impl Handler for Pauser {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
        if msg == b"pause" {
            cx.pause_reading(conn);
        }
        let _ = cx.send_frame(conn, msg);
    }
}

#[test]
fn a_paused_connection_with_bytes_waiting_does_not_spin_the_loop() {
    let _low = util::few_descriptors();
    for kind in KINDS {
        let server = Server::start(config(kind), Pauser);
        let mut client = connect(server.addr);
        write_all(&mut client, b"pause\n");
        assert_eq!(read_n(&mut client, 6), b"pause\n");
        // Bytes the loop will not read: the socket stays readable.
        write_all(&mut client, b"unread\n");
        let events = events_while_quiet(&server, Duration::from_millis(300));
        assert!(events < 20, "{kind:?}: {events} events while paused");
    }
}

/// Answers `big` with 4 MiB, more than the socket buffers hold.
struct Big;

impl Handler for Big {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, _msg: &[u8]) {
        let _ = cx.send(conn, &vec![b'x'; 4 * 1024 * 1024]);
    }
}

#[test]
fn end_of_input_with_output_still_owed_does_not_spin_the_loop() {
    let _low = util::few_descriptors();
    for kind in KINDS {
        let server = Server::start(config(kind), Big);
        let mut client = connect(server.addr);
        // Three requests: the first answer fills the socket, the other two
        // wait unhandled (the output is over its high watermark).
        write_all(&mut client, b"big\nbig\nbig\n");
        server.wait_for("the socket buffer to fill", |s| s.writes_blocked >= 1);
        // The peer ends its input but does not read yet: the end of input
        // is readable for ever, the output waits for room.
        client.shutdown(Shutdown::Write).unwrap();
        let events = events_while_quiet(&server, Duration::from_millis(300));
        assert!(events < 20, "{kind:?}: {events} events while waiting");
        let mut all = Vec::new();
        client.read_to_end(&mut all).unwrap();
        assert_eq!(all.len(), 3 * 4 * 1024 * 1024, "{kind:?}");
        server.wait_for("the close", |s| s.closed_by_peer == 1);
    }
}

#[test]
fn the_handle_wakes_every_backend() {
    let _low = util::few_descriptors();
    for kind in KINDS {
        util::init_logger();
        let mut reactor = Reactor::with_config(config(kind)).unwrap();
        let expected = match kind {
            BackendKind::Poll => "poll",
            BackendKind::Select => "select",
            _ if cfg!(windows) => "iocp",
            _ if cfg!(any(target_os = "linux", target_os = "android")) => "epoll",
            _ => "kqueue",
        };
        assert_eq!(reactor.backend_name(), expected);
        let listener = reactor.listen("127.0.0.1:0").unwrap();
        let mut client = connect(reactor.local_addr(listener).unwrap());
        let handle = reactor.handle().unwrap();
        let mut connected = None;
        let mut handler = Echo::default();
        let deadline = std::time::Instant::now() + util::PATIENCE;
        while connected.is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "{kind:?}: the client was never accepted"
            );
            reactor
                .run_once(&mut handler, Some(Duration::from_millis(10)))
                .unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            reactor
                .context()
                .handle()
                .unwrap()
                .run(move |cx| {
                    let _ = tx.send(cx.connection_count());
                })
                .unwrap();
            reactor
                .run_once(&mut handler, Some(Duration::from_millis(10)))
                .unwrap();
            if rx.try_recv() == Ok(1) {
                connected = Some(());
            }
        }
        let sender = std::thread::spawn(move || handle.stop().unwrap());
        // `run` returns only once the other thread's stop woke the poll.
        reactor.run(&mut handler).unwrap();
        sender.join().unwrap();
        client.write_all(b"still here\n").unwrap();
        reactor
            .run_once(&mut handler, Some(Duration::from_millis(100)))
            .unwrap();
        let mut echo = [0u8; 11];
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client.read_exact(&mut echo).unwrap();
        assert_eq!(&echo, b"still here\n", "{kind:?}");
    }
}

#[cfg(unix)]
/// select(2) cannot watch a descriptor at or above FD_SETSIZE (1,024): a
/// connection accepted onto one is refused, counted and logged, and the
/// server goes on serving (here, the next client once descriptors free up).
#[test]
fn select_refuses_a_connection_past_fd_setsize_and_serves_the_others() {
    let _many = util::many_descriptors();
    util::init_logger();
    util::raise_fd_limit(4096);
    let mut reactor = Reactor::with_config(config(BackendKind::Select)).unwrap();
    let listener = reactor.listen("127.0.0.1:0").unwrap();
    let addr = reactor.local_addr(listener).unwrap();
    let mut fillers: Vec<std::fs::File> = Vec::new();
    let mut handler = Echo::default();
    // Tests running beside this one close descriptors too: one that closes
    // below 1,024 after the fill leaves a hole the next accept takes. Such
    // a connection is served (it is watchable), and the next client tries
    // again, after the holes are filled once more.
    let mut accepted_below = Vec::new();
    let mut refused = None;
    for _attempt in 0..20 {
        fill_descriptors_below(1030, &mut fillers);
        let client = connect(addr);
        // Bounded: 2,000 turns of at most 5 ms.
        for _ in 0..2000 {
            reactor
                .run_once(&mut handler, Some(Duration::from_millis(5)))
                .unwrap();
            if reactor.stats().unwatchable == 1 || reactor.connection_count() > accepted_below.len()
            {
                break;
            }
        }
        if reactor.stats().unwatchable == 1 {
            refused = Some(client);
            break;
        }
        accepted_below.push(client);
    }
    let mut refused = refused.expect("the connection past FD_SETSIZE was not refused");
    assert_eq!(reactor.stats().unwatchable, 1);
    assert_eq!(reactor.connection_count(), accepted_below.len());
    let mut rest = Vec::new();
    refused
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = refused.read_to_end(&mut rest);
    drop(fillers);
    let mut served = connect(addr);
    served.write_all(b"under the limit\n").unwrap();
    served
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for _ in 0..200 {
        reactor
            .run_once(&mut handler, Some(Duration::from_millis(5)))
            .unwrap();
        if reactor.stats().messages == 1 {
            break;
        }
    }
    let mut echo = [0u8; 16];
    served.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"under the limit\n");
}

/// Opens `/dev/null` until a descriptor numbered `limit` or more comes
/// back, so that every lower one is taken (by `fillers` or by others).
#[cfg(unix)]
fn fill_descriptors_below(limit: i32, fillers: &mut Vec<std::fs::File>) {
    loop {
        let file = std::fs::File::open("/dev/null").unwrap();
        let fd = std::os::unix::io::AsRawFd::as_raw_fd(&file);
        fillers.push(file);
        if fd >= limit {
            return;
        }
    }
}

/// Makes `io_uring_setup` fail with `EPERM` on the calling thread (and
/// the processes it starts), as a container's seccomp profile does: a
/// classic BPF filter that answers that one system call with an error
/// and lets every other through. Irreversible for the thread.
#[cfg(target_os = "linux")]
fn refuse_io_uring_setup() -> std::io::Result<()> {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    const LD_W_ABS: u16 = (BPF_LD | BPF_W | BPF_ABS) as u16;
    const JMP_JEQ_K: u16 = (BPF_JMP | BPF_JEQ | BPF_K) as u16;
    const RET_K: u16 = (BPF_RET | BPF_K) as u16;
    let statement = |code, k| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let filter = [
        // The system call's number: `seccomp_data.nr`, at offset 0.
        statement(LD_W_ABS, 0),
        libc::sock_filter {
            code: JMP_JEQ_K,
            jt: 0,
            jf: 1,
            k: libc::SYS_io_uring_setup as u32,
        },
        statement(RET_K, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        statement(RET_K, libc::SECCOMP_RET_ALLOW),
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: plain prctl calls; `program` points at `filter`, which the
    // kernel copies before the call returns.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog,
            ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Where `io_uring_setup` is refused, a reactor asked for io_uring runs on
/// epoll, and serves.
#[cfg(target_os = "linux")]
#[test]
fn a_refused_io_uring_gives_an_epoll_reactor_that_serves() {
    let uring = Reactor::with_config(config(BackendKind::Uring)).unwrap();
    assert_eq!(uring.backend_name(), "uring", "io_uring works here");
    drop(uring);
    // On a thread of its own: the filter cannot be lifted.
    std::thread::spawn(|| {
        refuse_io_uring_setup().unwrap();
        let reactor = Reactor::with_config(config(BackendKind::Uring)).unwrap();
        assert_eq!(reactor.backend_name(), "epoll");
    })
    .join()
    .unwrap();
}

/// The same for a server run with `--backend uring`: one log line says
/// why, and it answers on epoll.
#[cfg(target_os = "linux")]
#[test]
fn a_server_refused_io_uring_says_so_once_and_serves_on_epoll() {
    use std::os::unix::process::CommandExt;
    let server = util::start_example_with("echo_server", &["--backend", "uring"], |command| {
        // SAFETY: between fork and exec only prctl runs, which is
        // async-signal-safe and allocates nothing.
        unsafe {
            command.pre_exec(refuse_io_uring_setup);
        }
    });
    let mut client = connect(server.addr);
    write_all(&mut client, b"still here\n");
    assert_eq!(read_n(&mut client, 11), b"still here\n");
    // The log is read on a thread of its own: wait for the line.
    let deadline = std::time::Instant::now() + util::PATIENCE;
    while !server.log().contains("io_uring is not available") {
        assert!(std::time::Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    let log = server.log();
    let said: Vec<_> = log
        .lines()
        .filter(|line| line.contains("io_uring is not available"))
        .collect();
    assert_eq!(said.len(), 1, "{log}");
    assert!(said[0].contains("running on epoll"), "{log}");
}

/// A connection closed for bad input is named by its peer's address in
/// the log line that says why, on epoll and on io_uring (where the ring
/// accepted it without asking for the address).
#[test]
fn a_connection_closed_for_bad_input_is_logged_with_its_peer() {
    for backend in ["epoll", "uring"] {
        let server = util::start_example(
            "echo_server",
            &["--codec", "lines", "--max", "16", "--backend", backend],
        );
        let mut client = connect(server.addr);
        let peer = client.local_addr().unwrap().to_string();
        write_all(&mut client, b"a line much longer than sixteen bytes\n");
        let deadline = std::time::Instant::now() + util::PATIENCE;
        let logged = |log: &str| {
            log.lines()
                .any(|line| line.contains("closed") && line.contains(&peer))
        };
        while !logged(&server.log()) {
            assert!(
                std::time::Instant::now() < deadline,
                "{backend}: no close line names {peer}:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
