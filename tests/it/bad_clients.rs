//! The robustness battery, applied to the two protocol servers: a
//! slowloris client, a client that pipelines 100,000 requests and never
//! reads, and a 10 MiB header line. Each is dealt with alone; a good client
//! beside it is served throughout.

use crate::util;

use util::BackendKind;

use std::io::{ErrorKind, Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use util::{connect, start_example, write_all, Running};

#[cfg(unix)]
/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

struct Protocol {
    example: &'static str,
    args: &'static [&'static str],
    /// A request and the exact answer it gets.
    request: &'static [u8],
    answer: &'static [u8],
    /// The start of a request that a slowloris client dribbles.
    slow_start: &'static [u8],
    /// A request carrying 1 KiB, answered with as much: 100,000 of them
    /// would make 100 MiB of answers if nothing held the client back
    /// (its test reads memory from /proc: Unix only).
    #[cfg_attr(not(unix), allow(dead_code))]
    flood: fn() -> Vec<u8>,
}

const HTTP: Protocol = Protocol {
    example: "http_server",
    args: &["--header-timeout-s", "1"],
    request: b"GET /json HTTP/1.1\r\nHost: t\r\n\r\n",
    answer: b"{\"message\":\"Hello, World!\"}",
    slow_start: b"GET / HTTP/1.1\r\n",
    flood: || {
        let mut request =
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1024\r\n\r\n".to_vec();
        request.extend_from_slice(&[b'x'; 1024]);
        request
    },
};

const RESP: Protocol = Protocol {
    example: "resp_server",
    args: &["--timeout-s", "1", "--command-timeout-s", "1"],
    request: b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n",
    answer: b"$2\r\nhi\r\n",
    slow_start: b"*3\r\n$3\r\nSET\r\n",
    flood: || {
        let mut request = b"*2\r\n$4\r\nECHO\r\n$1024\r\n".to_vec();
        request.extend_from_slice(&[b'x'; 1024]);
        request.extend_from_slice(b"\r\n");
        request
    },
};

/// Starts `example` with `args` on `backend`.
fn start(example: &str, args: &[&str], backend: BackendKind) -> Running {
    let mut all = vec!["--backend", backend.name()];
    all.extend_from_slice(args);
    start_example(example, &all)
}

/// Sends the protocol's request and checks its answer is among what comes back.
fn served(server: &Running, protocol: &Protocol) {
    let mut client = connect(server.addr);
    write_all(&mut client, protocol.request);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got
        .windows(protocol.answer.len())
        .any(|w| w == protocol.answer)
    {
        let n = client.read(&mut buf).expect("an answer");
        assert!(n > 0, "closed before answering");
        got.extend_from_slice(&buf[..n]);
    }
}

fn slowloris_is_cut_off(protocol: &Protocol, backend: BackendKind) {
    let server = start(protocol.example, protocol.args, backend);
    let mut slow = connect(server.addr);
    slow.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    write_all(&mut slow, protocol.slow_start);
    let started = Instant::now();
    // A byte every 100 ms (the read timeout paces it), the request never
    // complete; a good client is served each round meanwhile.
    loop {
        assert!(
            started.elapsed() < util::PATIENCE,
            "the slow client was never cut off"
        );
        served(&server, protocol);
        let _ = slow.write(b"x");
        let mut buf = [0u8; 1024];
        match slow.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break, // reset: closed too
        }
    }
    let closed = started.elapsed();
    eprintln!("{}: slowloris cut off after {closed:?}", protocol.example);
    assert!(
        closed >= Duration::from_millis(900),
        "cut off early: {closed:?}"
    );
    served(&server, protocol);
}

fn slowloris_clients_are_cut_off(backend: BackendKind) {
    slowloris_is_cut_off(&HTTP, backend);
    slowloris_is_cut_off(&RESP, backend);
}
per_backend!(slowloris_clients_are_cut_off);

#[cfg(unix)]
fn pipeliner_that_never_reads_costs_bounded_memory(protocol: &Protocol, backend: BackendKind) {
    let server = start(protocol.example, &[], backend);
    served(&server, protocol);
    let pid = server.child.id();
    let before = rss_kib(pid);
    let mut flood = connect(server.addr);
    flood
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let burst = (protocol.flood)().repeat(1000);
    let mut sent = 0;
    // 100,000 requests, or as many as the server lets in before TCP flow
    // control stops the writes (it stops reading once its queues are full).
    while sent < 100_000 {
        match flood.write_all(&burst) {
            Ok(()) => sent += 1000,
            Err(_) => break,
        }
    }
    let grown = rss_kib(pid).saturating_sub(before);
    eprintln!(
        "{}: {sent} requests written before flow control stopped them; server grew {grown} KiB",
        protocol.example
    );
    assert!(
        sent < 100_000,
        "nothing pushed back: the server buffered everything"
    );
    assert!(
        grown < 16 * 1024,
        "{}: server grew {grown} KiB",
        protocol.example
    );
    served(&server, protocol);
    drop(flood);
}

#[cfg(unix)]
fn a_client_that_pipelines_without_reading_costs_bounded_memory(backend: BackendKind) {
    pipeliner_that_never_reads_costs_bounded_memory(&HTTP, backend);
    pipeliner_that_never_reads_costs_bounded_memory(&RESP, backend);
}
#[cfg(unix)]
per_backend!(a_client_that_pipelines_without_reading_costs_bounded_memory);

/// Writes 10 MiB of a header line (an inline request for RESP) with no end,
/// on a thread, and returns how many bytes went before the server closed.
fn ten_mib_line(server: &Running, start: &'static [u8]) -> (Vec<u8>, usize) {
    let mut client = connect(server.addr);
    let mut writer = client.try_clone().unwrap();
    let writing = thread::spawn(move || {
        let mut sent = 0;
        if writer.write_all(start).is_err() {
            return sent;
        }
        let chunk = vec![b'a'; 64 * 1024];
        while sent < 10 * 1024 * 1024 {
            match writer.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        sent
    });
    let mut answer = Vec::new();
    let _ = client.read_to_end(&mut answer);
    (answer, writing.join().unwrap())
}

fn a_ten_mib_header_line_is_refused_early(backend: BackendKind) {
    let http = start("http_server", &[], backend);
    let (answer, _) = ten_mib_line(&http, b"GET / HTTP/1.1\r\nX-Huge: ");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
    served(&http, &HTTP);

    let resp = start("resp_server", &[], backend);
    let (answer, _) = ten_mib_line(&resp, b"SET k ");
    assert_eq!(
        String::from_utf8_lossy(&answer),
        "-ERR Protocol error: too big inline request\r\n"
    );
    served(&resp, &RESP);
}
per_backend!(a_ten_mib_header_line_is_refused_early);
