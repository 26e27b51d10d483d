//! The example programs, run as processes and driven over TCP and stdin.

use crate::util;

use std::io::Write;
use std::process::{Command, Stdio};

use util::{connect, read_n, write_all, GREETING};

use util::example;
use util::start_example as start_server;

#[test]
fn select_server_greets_and_answers_over_tcp() {
    let server = start_server("select_server", &[]);
    let mut client = connect(server.addr);
    assert_eq!(read_n(&mut client, GREETING.len()), GREETING);
    write_all(&mut client, b"hello");
    assert_eq!(read_n(&mut client, 15), b"response: hello");
    // A second client at the same time.
    let mut other = connect(server.addr);
    assert_eq!(read_n(&mut other, GREETING.len()), GREETING);
    write_all(&mut other, b"two");
    assert_eq!(read_n(&mut other, 13), b"response: two");
}

#[test]
fn select_client_talks_to_select_server_through_piped_stdin() {
    let server = start_server("select_server", &[]);
    let mut client = Command::new(example("select_client"))
        .args(["--addr", &server.addr.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn client");
    client
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"hi\n\nthere\nq\nnot sent\n")
        .expect("feed stdin");
    let output = client.wait_with_output().expect("client output");
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "Hello client-side\n>>> response: hi\n>>> >>> response: there\n>>> "
    );
}

#[test]
fn echo_server_echoes_with_each_codec() {
    let chunks = start_server("echo_server", &["--codec", "chunks"]);
    let mut client = connect(chunks.addr);
    write_all(&mut client, b"raw bytes");
    assert_eq!(read_n(&mut client, 9), b"raw bytes");

    let lines = start_server("echo_server", &["--codec", "lines"]);
    let mut client = connect(lines.addr);
    write_all(&mut client, b"one\r\ntwo\n");
    assert_eq!(read_n(&mut client, 8), b"one\ntwo\n");

    let length = start_server("echo_server", &["--codec", "length"]);
    let mut client = connect(length.addr);
    write_all(&mut client, &[0, 0, 0, 3, b'a', b'b', b'c']);
    assert_eq!(read_n(&mut client, 7), [0, 0, 0, 3, b'a', b'b', b'c']);
}

/// Every example answers `--help` with its usage, and exits 0.
#[test]
fn every_example_has_help() {
    for name in [
        "select_server",
        "select_client",
        "echo_server",
        "chat_server",
        "worker_pool",
        "proxy",
        "ticker",
        "select_literal",
        "blocking_server",
        "level_vs_edge",
        "partial_write",
        "stale_token",
        "threads_and_queues",
        "resp_server",
        "http_server",
        "memcached_server",
        "dns_server",
    ] {
        let output = Command::new(example(name))
            .arg("--help")
            .output()
            .expect("run example");
        assert!(output.status.success(), "{name} --help failed: {output:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            text.starts_with(&format!("usage: {name}")),
            "{name} --help printed {text:?}"
        );
        // Each flag of the synopsis is described on a line of its own.
        let synopsis = text.split("\n\n").next().unwrap_or("");
        for flag in synopsis
            .split(|c: char| c.is_whitespace() || "[]|".contains(c))
            .filter(|word| word.starts_with("--"))
        {
            let described = text
                .lines()
                .any(|line| line.trim_start().starts_with(flag) && line.starts_with("  "));
            assert!(
                described,
                "{name} --help names {flag} but says nothing of it"
            );
        }
    }
}

/// Every example refuses an argument it does not know (status 2, and a
/// pointer to `--help`) rather than ignore it.
#[test]
fn every_example_refuses_an_unknown_argument() {
    for name in [
        "select_server",
        "echo_server",
        "level_vs_edge",
        "partial_write",
        "stale_token",
        "threads_and_queues",
    ] {
        let output = Command::new(example(name))
            .arg("--bogus")
            .output()
            .expect("run example");
        assert_eq!(output.status.code(), Some(2), "{name}: {output:?}");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains("--bogus"), "{name}: {said}");
        assert!(
            said.contains(&format!("try `{name} --help`")),
            "{name}: {said}"
        );
    }
}

/// `--addr` takes a host name, resolved as every server resolves one.
#[test]
fn a_server_listens_on_a_host_name() {
    let server = start_server("select_server", &["--addr", "localhost:0"]);
    assert!(server.addr.ip().is_loopback(), "{}", server.addr);
    let mut client = connect(server.addr);
    assert_eq!(read_n(&mut client, GREETING.len()), GREETING);
}

/// Start-up errors are one sentence naming what failed and what to do,
/// not Rust's Debug form of an `io::Error`.
#[test]
fn start_up_errors_name_what_failed() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let runs: [(&str, &[&str]); 7] = [
        ("select_server", &[]),
        ("echo_server", &[]),
        ("echo_server", &["--threads", "2"]),
        ("chat_server", &[]),
        ("ticker", &[]),
        ("select_literal", &[]),
        ("blocking_server", &[]),
    ];
    // select_literal is Unix's select(2), refused on Windows before it
    // listens.
    let runs = runs
        .iter()
        .filter(|(name, _)| cfg!(unix) || *name != "select_literal");
    for &(name, extra) in runs {
        let output = Command::new(example(name))
            .args(["--addr", &addr])
            .args(extra)
            .output()
            .expect("run example");
        assert_eq!(output.status.code(), Some(1), "{name}: {output:?}");
        let said = String::from_utf8_lossy(&output.stderr);
        let said = said.trim_end();
        let start = format!("{name}: cannot listen on {addr}: ");
        let hint = " (another server has the port: pick another with --addr)";
        // Winsock words the refusal its own way (access denied, in words
        // that differ between Windows and Wine): only Unix's is pinned.
        let why = said
            .strip_prefix(&start)
            .and_then(|rest| rest.strip_suffix(hint));
        if cfg!(unix) {
            assert_eq!(
                why,
                Some("address already in use"),
                "{name} {extra:?}: {said}"
            );
        } else {
            assert!(why.is_some(), "{name} {extra:?}: {said}");
        }
    }
    let output = Command::new(example("echo_server"))
        .args(["--addr", "127.0.0.1:0", "--threads", "0"])
        .output()
        .expect("run echo_server");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.starts_with("echo_server: --threads 0: at least one loop"),
        "{said}"
    );
    // More loops than descriptors: said as such, with what to do (Unix:
    // Windows has no descriptor limit to lower).
    if cfg!(unix) {
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n 64 && exec {} --addr 127.0.0.1:0 --threads 100",
                example("echo_server").display()
            ))
            .output()
            .expect("run echo_server");
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(
            said.starts_with("echo_server: cannot start 100 loops: too many open files")
                && said.contains("ulimit -n"),
            "{said}"
        );
    }
    let output = Command::new(example("ticker"))
        .args(["--addr", "127.0.0.1:0", "--every-ms", "0"])
        .output()
        .expect("run ticker");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.starts_with("ticker: --every-ms 0:"), "{said}");
}

/// The worker pool's protocol: `ping`, `hash TEXT`, and an error line for
/// anything else (it used to answer `pong` to anything).
#[test]
fn worker_pool_answers_unknown_commands_with_an_error() {
    let server = start_server("worker_pool", &[]);
    let mut client = connect(server.addr);
    write_all(&mut client, b"ping\nhelp me\n");
    let expected = "pong\nerror: unknown command, expected ping or hash TEXT\n";
    assert_eq!(
        String::from_utf8_lossy(&read_n(&mut client, expected.len())),
        expected
    );
}

/// Answers on one connection keep the order of its requests, though the
/// pongs are ready 50 ms before the hashes they follow; with and without
/// the pool.
#[test]
fn worker_pool_answers_in_request_order() {
    let _alone = util::hashing_alone();
    for extra in [&[][..], &["--no-pool"][..]] {
        let server = start_server("worker_pool", extra);
        let mut client = connect(server.addr);
        write_all(&mut client, b"hash a\nhash b\nping\nbogus\nhash a\nping\n");
        let mut reader = std::io::BufReader::new(&mut client);
        let answers: Vec<String> = (0..6)
            .map(|_| {
                let mut line = String::new();
                std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
                line.trim_end().to_string()
            })
            .collect();
        let kinds: Vec<&str> = answers
            .iter()
            .map(|a| a.split(' ').next().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["hash", "hash", "pong", "error:", "hash", "pong"],
            "{extra:?}: {answers:?}"
        );
    }
}

/// Pings pipelined behind a hash wait for it, more of them than the
/// server holds before it stops reading that client (1,024): reading
/// resumes once the hash is answered, and every answer comes, in order.
#[test]
fn worker_pool_holds_a_bounded_number_of_early_answers() {
    let _alone = util::hashing_alone();
    let server = start_server("worker_pool", &[]);
    let mut client = connect(server.addr);
    let mut requests = b"hash x\n".to_vec();
    for _ in 0..3000 {
        requests.extend_from_slice(b"ping\n");
    }
    write_all(&mut client, &requests);
    let mut reader = std::io::BufReader::new(&mut client);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
    assert!(line.starts_with("hash "), "{line:?}");
    for i in 0..3000 {
        line.clear();
        std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
        assert_eq!(line, "pong\n", "answer {i}");
    }
}

/// A fault a client causes is logged without `RUST_LOG`: the example
/// servers log warnings by default.
#[test]
fn example_servers_log_faults_by_default() {
    use std::io::{BufRead, BufReader, Read};
    let mut server = Command::new(example("echo_server"))
        .args(["--addr", "127.0.0.1:0", "--codec", "lines", "--max", "16"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn echo_server");
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr: std::net::SocketAddr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .parse()
        .unwrap();
    let mut client = connect(addr);
    write_all(&mut client, &[b'x'; 100]);
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest); // closed by the server
    server.kill().unwrap();
    let mut log = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let _ = server.wait();
    assert!(log.contains("WARN"), "nothing logged: {log:?}");
    assert!(log.contains("over 16"), "the limit is not named: {log:?}");
}

/// `--backend poll` and `--backend select` run the seed's server on
/// `poll(2)` and on `select(2)` itself, same protocol.
#[test]
fn select_server_on_the_poll_and_select_backends() {
    for backend in ["poll", "select"] {
        let server = start_server("select_server", &["--backend", backend]);
        let mut client = connect(server.addr);
        assert_eq!(read_n(&mut client, GREETING.len()), GREETING);
        write_all(&mut client, b"polled");
        assert_eq!(read_n(&mut client, 16), b"response: polled", "{backend}");
    }
    let output = Command::new(example("echo_server"))
        .args(["--addr", "127.0.0.1:0", "--backend", "devpoll"])
        .output()
        .expect("run echo_server");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown backend \"devpoll\""));
}

/// The seed's learners drive the server from Python: the project's own
/// standard-library client talks to `select_server --backend select`, the
/// same select(2) call as the seed's server makes.
#[test]
fn python_client_talks_to_select_server_on_select() {
    let script = util::python_script("select_client.py");
    let server = start_server("select_server", &["--backend", "select"]);
    let output = Command::new("python3")
        .arg(&script)
        .args(["--addr", &server.addr.to_string(), "one", "two"])
        .output()
        .expect("run the Python client");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "Hello client-side\nresponse: one\nresponse: two\n"
    );
}

/// The demonstration of level- against edge-triggered readiness shows each
/// kind's classic bug and its fix, on the crate's own backends.
#[test]
fn level_vs_edge_shows_each_bug_and_its_fix() {
    let text = util::demo_output("level_vs_edge");
    let lines: Vec<&str> = text.lines().collect();
    if cfg!(windows) {
        // The default backend there re-arms what it reports (see
        // MioBackend): level-triggered, as poll is, with poll's bug.
        assert!(
            lines[1].contains("iocp   read 3072 of 3072 bytes: all of it"),
            "{text}"
        );
        assert!(
            lines[7].contains("iocp   woke") && lines[7].contains("a busy loop"),
            "{text}"
        );
        assert!(lines[8].ends_with(": 0 wakeups"), "{text}");
        return;
    }
    // Read once per event: edge-triggered leaves bytes stuck, level does not.
    assert!(
        lines[1].contains("epoll  read 1024 of 3072 bytes: 2048 bytes stuck"),
        "{text}"
    );
    assert!(
        lines[2].contains("poll   read 3072 of 3072 bytes: all of it"),
        "{text}"
    );
    // Read until WouldBlock: both get everything.
    assert!(lines[4].contains("epoll  read 3072 of 3072"), "{text}");
    assert!(lines[5].contains("poll   read 3072 of 3072"), "{text}");
    // Left unread but watched: edge-triggered reports it once, level spins.
    assert!(lines[7].contains("epoll  woke 1 times"), "{text}");
    assert!(lines[9].contains("a busy loop"), "{text}");
    assert!(
        lines[8].ends_with(": 0 wakeups") && lines[10].ends_with(": 0 wakeups"),
        "{text}"
    );
}

/// The project's Python port of the seed's server (the benchmarks' and the
/// book's anchor) serves the seed's protocol.
#[test]
fn python_select_server_serves_the_seed_protocol() {
    let script = util::python_script("select_server.py");
    let mut command = Command::new("python3");
    command
        .arg(&script)
        .args(["--addr", "127.0.0.1:0", "--quiet"]);
    let server = util::start_process(command);
    let addr = server.addr;
    let mut client = connect(addr);
    assert_eq!(read_n(&mut client, GREETING.len()), GREETING);
    write_all(&mut client, b"hello");
    assert_eq!(read_n(&mut client, 15), b"response: hello");
}

/// The partial-write demonstration: one `write` with its count ignored
/// delivers only what the kernel took; keeping the rest delivers it all.
#[test]
fn partial_write_shows_the_bytes_lost_and_the_fix() {
    let text = util::demo_output("partial_write");
    let got = |line: &str| -> (u64, u64) {
        let after = line.split("the client got ").nth(1).expect("a count");
        let mut numbers = after
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<u64>().unwrap());
        (numbers.next().unwrap(), numbers.next().unwrap())
    };
    let lines: Vec<&str> = text.lines().collect();
    let (lost_got, total) = got(lines[0]);
    assert!(
        lost_got < total,
        "the naive write delivered everything: {text}"
    );
    assert!(
        lines[0].contains(&format!("({lost_got} taken by write)")),
        "{text}"
    );
    let (kept_got, total) = got(lines[1]);
    assert_eq!(kept_got, total, "{text}");
}

/// The stale-token demonstration: a send to a closed connection's id is
/// refused, and the newer connection in the same slot receives nothing.
#[test]
fn stale_token_shows_an_old_id_never_reaching_the_new_connection() {
    let text = util::demo_output("stale_token");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0], "client A was conn#0.1; client B is conn#0.2, in the slot A left",
        "{text}"
    );
    assert_eq!(
        lines[1], "send to conn#0.1: Err(Closed(conn#0.1))",
        "{text}"
    );
    assert_eq!(
        lines[2], "client B read nothing: the old id did not reach it",
        "{text}"
    );
}
