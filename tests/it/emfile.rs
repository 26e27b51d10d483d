//! Out of descriptors: the server runs as a child process with
//! `RLIMIT_NOFILE` = 64 and gets 1,000 connection attempts. It must not spin
//! (the listener stays readable while accept fails with EMFILE), must keep
//! answering the clients it has, and must accept again once clients leave.

use crate::util;

use util::BackendKind;

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::thread;
use std::time::{Duration, Instant};

use util::{connect, read_n, write_all};

fn round_trip(client: &mut TcpStream, msg: &str) {
    write_all(client, msg.as_bytes());
    assert_eq!(read_n(client, msg.len()), msg.as_bytes());
}

/// Connects until a newcomer is answered (accepting has resumed), and
/// returns its connection.
fn newcomer_served(server: &util::Running) -> TcpStream {
    util::wait_until("a newcomer to be served", || {
        let mut client = connect(server.addr);
        client
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        client.write_all(b"newcomer\n").ok()?;
        let mut buf = [0u8; 9];
        std::io::Read::read_exact(&mut client, &mut buf).ok()?;
        (&buf == b"newcomer\n").then_some(client)
    })
}

/// echo_server as a child process limited to 64 descriptors.
fn start_limited(backend: BackendKind, policy: &str) -> util::Running {
    util::raise_fd_limit(4096);
    util::start_example_with(
        "echo_server",
        // No cap below the limit: the kernel's EMFILE is what is tested.
        &[
            "--codec",
            "lines",
            "--max-connections",
            "100000",
            "--fd-reserve",
            "0",
            "--emfile-policy",
            policy,
            "--backend",
            backend.name(),
        ],
        |command| {
            // SAFETY: only setrlimit, which is async-signal-safe, runs
            // between fork and exec.
            unsafe {
                command.pre_exec(|| {
                    let limit = libc::rlimit {
                        rlim_cur: 64,
                        rlim_max: 64,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        },
    )
}

fn out_of_descriptors_the_server_pauses_accepting_without_spinning(backend: BackendKind) {
    let server = start_limited(backend, "pause");
    let pid = server.child.id();

    let mut established: Vec<TcpStream> = (0..10).map(|_| connect(server.addr)).collect();
    for (i, client) in established.iter_mut().enumerate() {
        round_trip(client, &format!("established {i}\n"));
    }

    // 1,000 more: the kernel completes their handshakes (the backlog is
    // 1024), the server runs out of descriptors accepting them.
    let flood: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(server.addr).expect("connect into the backlog"))
        .collect();
    // EMFILE did happen, and paused accepting: the server says so (its
    // warning is the accept-pause counter's log line).
    util::wait_until("the server to pause accepting", || {
        let log = server.log();
        (log.contains("Config::accept_backoff") && log.contains("os error 24")).then_some(())
    });

    // Over one second: the established clients are answered, and the
    // server's CPU time stays under 5% (a spinning loop would use ~100%).
    let ticks_before = util::cpu_ticks(pid);
    let window = Instant::now();
    let mut rounds = 0;
    while window.elapsed() < Duration::from_secs(1) {
        for (i, client) in established.iter_mut().enumerate() {
            round_trip(client, &format!("during {i} {rounds}\n"));
        }
        rounds += 1;
        thread::sleep(Duration::from_millis(50));
    }
    let used = util::cpu_ticks(pid) - ticks_before;
    let per_second = util::ticks_per_second();
    let elapsed = window.elapsed().as_secs_f64();
    let cpu = used as f64 / per_second as f64 / elapsed;
    eprintln!(
        "server CPU while out of descriptors: {:.1}% ({used} ticks in {elapsed:.2} s)",
        cpu * 100.0
    );
    assert!(cpu < 0.05, "server used {:.1}% CPU", cpu * 100.0);
    assert!(server.child.id() == pid && rounds > 0);

    // The flood leaves; a newcomer is served within a second.
    drop(flood);
    let left = Instant::now();
    let newcomer = newcomer_served(&server);
    let took = left.elapsed();
    eprintln!("accepting resumed {took:?} after the flood left");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    drop(newcomer);
    for (i, client) in established.iter_mut().enumerate() {
        round_trip(client, &format!("after {i}\n"));
    }
}
per_backend_many!(out_of_descriptors_the_server_pauses_accepting_without_spinning);

/// With `EmfilePolicy::Shed` the flood is not left waiting in the backlog:
/// the connections the server has no descriptor for are accepted with the
/// spare and closed at once, so their clients hear (end of stream) within
/// moments, while the clients already served go on being answered.
fn out_of_descriptors_the_server_sheds_the_backlog_with_its_spare(backend: BackendKind) {
    let server = start_limited(backend, "shed");
    let pid = server.child.id();
    let mut established: Vec<TcpStream> = (0..10).map(|_| connect(server.addr)).collect();
    for (i, client) in established.iter_mut().enumerate() {
        round_trip(client, &format!("established {i}\n"));
    }
    let flood: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(server.addr).expect("connect into the backlog"))
        .collect();
    for client in &flood {
        client.set_nonblocking(true).unwrap();
    }
    // The clients the server could not keep see their connection end: a
    // read gives 0 bytes (or a reset), not WouldBlock.
    let closed = |flood: &[TcpStream]| {
        flood
            .iter()
            .filter(|client| {
                let mut byte = [0u8; 1];
                match std::io::Read::read(&mut &**client, &mut byte) {
                    Ok(0) => true,
                    Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                    Ok(_) => false,
                }
            })
            .count()
    };
    let shed = util::wait_until("the backlog to be shed", || {
        let shed = closed(&flood);
        (shed >= 900).then_some(shed)
    });
    let log = server.log();
    assert!(
        log.contains("Config::emfile_policy") && !log.contains("it pauses for"),
        "the server should shed, not pause:\n{log}"
    );
    // Nothing spins meanwhile, and the established clients are answered.
    let ticks_before = util::cpu_ticks(pid);
    let window = Instant::now();
    for round in 0..10 {
        for (i, client) in established.iter_mut().enumerate() {
            round_trip(client, &format!("during {i} {round}\n"));
        }
        thread::sleep(Duration::from_millis(50));
    }
    let cpu = (util::cpu_ticks(pid) - ticks_before) as f64
        / util::ticks_per_second() as f64
        / window.elapsed().as_secs_f64();
    eprintln!(
        "{shed} of 1,000 flood connections shed at once; server CPU after: {:.1}%",
        cpu * 100.0
    );
    assert!(cpu < 0.05, "server used {:.1}% CPU", cpu * 100.0);
    // Once the clients it did accept leave, a newcomer is served.
    drop(flood);
    let newcomer = newcomer_served(&server);
    drop(newcomer);
}
per_backend_many!(out_of_descriptors_the_server_sheds_the_backlog_with_its_spare);
