//! The embedding examples as processes: chat_server, worker_pool, proxy,
//! ticker.

use crate::util;

use util::BackendKind;

#[cfg(unix)]
use std::io::Write;
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use util::{connect, start_example, write_all, PATIENCE};

fn read_line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read a line");
    line.trim_end().to_string()
}

fn chat_server_sends_each_line_to_everyone_else(backend: BackendKind) {
    let server = start_example("chat_server", &["--backend", backend.name()]);
    let mut readers: Vec<BufReader<TcpStream>> = Vec::new();
    for _ in 0..3 {
        let client = connect(server.addr);
        let mut reader = BufReader::new(client);
        assert!(read_line(&mut reader).starts_with("welcome, you are conn#"));
        readers.push(reader);
    }
    write_all(readers[0].get_mut(), b"hello room\n");
    for reader in &mut readers[1..] {
        let heard = loop {
            let line = read_line(reader);
            if !line.starts_with('*') {
                break line;
            }
        };
        assert!(heard.ends_with(": hello room"), "{heard:?}");
    }
    // The sender does not hear itself: it sees the next speaker's line first.
    write_all(readers[1].get_mut(), b"marker\n");
    loop {
        let line = read_line(&mut readers[0]);
        assert!(!line.ends_with("hello room"), "echoed to its sender");
        if line.ends_with(": marker") {
            break;
        }
    }
}
per_backend!(chat_server_sends_each_line_to_everyone_else);

#[cfg(unix)]
/// Sends `hash` on one connection, then `ping` on another once the server
/// is busy hashing (its CPU time has moved on); returns how long the ping
/// took and how long the hash took.
fn ping_during_hash(addr: std::net::SocketAddr, server_pid: u32) -> (Duration, Duration) {
    let idle_ticks = util::cpu_ticks(server_pid);
    let hasher = thread::spawn(move || {
        let mut client = BufReader::new(connect(addr));
        let sent = Instant::now();
        write_all(client.get_mut(), b"hash some text\n");
        let answer = read_line(&mut client);
        assert!(answer.starts_with("hash "), "{answer:?}");
        sent.elapsed()
    });
    // The server is idle but for the hash: its CPU time grows only once
    // the hash runs (a tick is 10 ms; the hash takes about 50).
    util::wait_until("the server to start hashing", || {
        (util::cpu_ticks(server_pid) > idle_ticks).then_some(())
    });
    let mut pinger = BufReader::new(connect(addr));
    let sent = Instant::now();
    write_all(pinger.get_mut(), b"ping\n");
    assert_eq!(read_line(&mut pinger), "pong");
    let ping = sent.elapsed();
    (ping, hasher.join().unwrap())
}

#[cfg(unix)]
fn worker_pool_keeps_pings_quick_while_hashes_run(backend: BackendKind) {
    let _alone = util::hashing_alone();
    let pooled = start_example("worker_pool", &["--backend", backend.name()]);
    let inline = start_example("worker_pool", &["--no-pool", "--backend", backend.name()]);
    // Warm up both (first connection, first job starts the pool).
    let (pooled_pid, inline_pid) = (pooled.child.id(), inline.child.id());
    ping_during_hash(pooled.addr, pooled_pid);
    let (ping_pooled, hash_pooled) = ping_during_hash(pooled.addr, pooled_pid);
    let (ping_inline, hash_inline) = ping_during_hash(inline.addr, inline_pid);
    eprintln!(
        "ping during a 50 ms hash: {ping_pooled:?} with the pool (hash {hash_pooled:?}), \
         {ping_inline:?} without (hash {hash_inline:?})"
    );
    // With the pool the ping overtakes the hash; without, it waits behind it.
    assert!(ping_pooled < hash_pooled, "the ping waited for the hash");
    assert!(
        ping_inline >= Duration::from_millis(10),
        "without the pool the ping should wait for the hash: {ping_inline:?}"
    );
}
#[cfg(unix)]
per_backend!(worker_pool_keeps_pings_quick_while_hashes_run);

/// With its upstream down, the proxy closes each client and says why in
/// its log, naming the upstream.
#[test]
fn proxy_logs_why_it_closes_a_client_when_the_upstream_is_down() {
    // A loopback port nobody listens on: taken, then given back.
    let down = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = start_example("proxy", &["--upstream", &down.to_string()]);
    let mut client = connect(proxy.addr);
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).expect("closed, not reset");
    assert!(rest.is_empty());
    let deadline = Instant::now() + PATIENCE;
    let wanted = format!("cannot reach upstream {down}");
    while !proxy.log().contains(&wanted) {
        assert!(Instant::now() < deadline, "log: {}", proxy.log());
        thread::sleep(Duration::from_millis(10));
    }
    assert!(
        proxy.log().contains("closing its client"),
        "{}",
        proxy.log()
    );
}

#[cfg(unix)]
fn proxy_carries_64_mib_to_a_slow_reader_byte_exact_with_bounded_memory(backend: BackendKind) {
    const TOTAL: usize = 64 * 1024 * 1024;
    let sink = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = sink.local_addr().unwrap().to_string();
    let proxy = start_example(
        "proxy",
        &["--upstream", &upstream, "--backend", backend.name()],
    );
    let pid = proxy.child.id();
    let rss = move || -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap()
    };
    let baseline = rss();
    let mut client = connect(proxy.addr);
    let writer = thread::spawn(move || {
        let mut chunk = vec![0u8; 64 * 1024];
        let mut offset = 0;
        while offset < TOTAL {
            for (i, b) in chunk.iter_mut().enumerate() {
                *b = ((offset + i) % 251) as u8;
            }
            client.write_all(&chunk).unwrap();
            offset += chunk.len();
        }
        client
    });
    let (mut far, _) = sink.accept().unwrap();
    far.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut received = 0;
    let mut peak = baseline;
    while received < TOTAL {
        let n = far.read(&mut buf).unwrap();
        assert!(n > 0, "upstream side closed after {received} bytes");
        for (i, &b) in buf[..n].iter().enumerate() {
            assert_eq!(b, ((received + i) % 251) as u8, "byte {}", received + i);
        }
        received += n;
        if received % (4 * 1024 * 1024) < n {
            peak = peak.max(rss());
            thread::sleep(Duration::from_millis(20)); // a slow reader
        }
    }
    let client = writer.join().unwrap();
    drop(client);
    let grown = peak.saturating_sub(baseline);
    eprintln!("proxy resident memory grew at most {grown} KiB carrying 64 MiB");
    assert!(grown < 16 * 1024, "proxy grew {grown} KiB");
}
#[cfg(unix)]
per_backend!(proxy_carries_64_mib_to_a_slow_reader_byte_exact_with_bounded_memory);

fn ticker_pushes_ticks_and_stops_from_another_thread(backend: BackendKind) {
    let mut server = start_example(
        "ticker",
        &[
            "--every-ms",
            "50",
            "--seconds",
            "1",
            "--backend",
            backend.name(),
        ],
    );
    let mut client = BufReader::new(connect(server.addr));
    let started = Instant::now();
    assert_eq!(read_line(&mut client), "tick 1");
    assert_eq!(read_line(&mut client), "tick 2");
    // The thread's handle shuts the server down after a second: end of file.
    let mut rest = String::new();
    client.read_to_string(&mut rest).unwrap();
    assert!(rest.lines().all(|l| l.starts_with("tick ")), "{rest:?}");
    let status = util::wait_until("the ticker to exit", || server.child.try_wait().unwrap());
    assert!(status.success());
    assert!(started.elapsed() >= Duration::from_millis(900));
}
per_backend!(ticker_pushes_ticks_and_stops_from_another_thread);
