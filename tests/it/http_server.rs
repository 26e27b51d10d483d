//! The http_server example, driven by raw sockets and by the real `curl`,
//! `ab` and `wrk` (Debian's `curl`, `apache2-utils` and `wrk`, which
//! `.ci/run` installs).

use crate::util;

use util::BackendKind;

use std::io::Read;
use std::net::TcpStream;

use util::{connect, read_n, start_example, write_all};

/// Reads a response's head, through the blank line.
fn read_head(client: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.extend_from_slice(&read_n(client, 1));
    }
    String::from_utf8(head).unwrap()
}

/// Reads one response: its head, then a body of its Content-Length.
fn read_response(client: &mut TcpStream) -> (String, Vec<u8>) {
    let head = read_head(client);
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("Content-Length");
    (head, read_n(client, length))
}

/// The server with `--root root`.
fn serve_root(backend: BackendKind, root: &std::path::Path) -> util::Running {
    let root = root.to_str().unwrap();
    start_example(
        "http_server",
        &["--backend", backend.name(), "--root", root],
    )
}

/// A directory of this test process's own: the cases of one test run in
/// parallel, one per backend, so each gets one.
fn scratch_dir(name: &str, backend: BackendKind) -> std::path::PathBuf {
    let pid = std::process::id();
    std::env::temp_dir().join(format!("{name}-{pid}-{}", backend.name()))
}

/// Runs curl (quiet, 10 s at most) and returns what it printed; a failure
/// fails the test.
fn curl(args: &[&str]) -> String {
    let output = util::tool("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("run curl");
    assert!(output.status.success(), "curl {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn status(head: &str) -> u16 {
    head[9..12].parse().unwrap()
}

fn pipelined_requests_split_at_every_byte_are_answered_in_order(backend: BackendKind) {
    let server = start_example("http_server", &["--backend", backend.name()]);
    let wire: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n\
POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\nhello!\
POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nchun\r\n3\r\nked\r\n0\r\n\r\n\
GET /json HTTP/1.1\r\nHost: t\r\n\r\n";
    for piece in [1, 7, wire.len()] {
        let mut client = connect(server.addr);
        client.set_nodelay(true).unwrap();
        for chunk in wire.chunks(piece) {
            write_all(&mut client, chunk);
        }
        let bodies: Vec<(u16, Vec<u8>)> = (0..4)
            .map(|_| {
                let (head, body) = read_response(&mut client);
                assert!(head.contains("Connection: keep-alive\r\n"), "{head}");
                (status(&head), body)
            })
            .collect();
        assert_eq!(
            bodies,
            [
                (200, b"Hello, World!".to_vec()),
                (200, b"hello!".to_vec()),
                (200, b"chunked".to_vec()),
                (200, br#"{"message":"Hello, World!"}"#.to_vec()),
            ],
            "pieces of {piece}"
        );
    }
}
per_backend!(pipelined_requests_split_at_every_byte_are_answered_in_order);

fn errors_get_their_status_and_the_server_carries_on(backend: BackendKind) {
    let server = start_example(
        "http_server",
        &[
            "--backend",
            backend.name(),
            "--max-header",
            "1024",
            "--max-body",
            "64",
        ],
    );
    let mut keeper = connect(server.addr);
    write_all(&mut keeper, b"GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(status(&read_response(&mut keeper).0), 404);
    write_all(&mut keeper, b"DELETE / HTTP/1.1\r\nHost: t\r\n\r\n");
    let (head, _) = read_response(&mut keeper);
    assert_eq!(status(&head), 405);
    assert!(head.contains("Allow: GET\r\n"), "{head}");
    // Refused requests: answered, then the connection is closed.
    let long_header = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(2000));
    for (wire, expected) in [
        (b"GARBAGE\x01 / HTTP/1.1\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/2.0\r\n\r\n".to_vec(), 505),
        (
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 65\r\n\r\n".to_vec(),
            413,
        ),
        (long_header.into_bytes(), 431),
        (
            b"PUT /echo HTTP/1.1\r\nHost: t\r\nExpect: 200-ok\r\n\r\n".to_vec(),
            417,
        ),
        // Request smuggling, two ways of many (the decoder's unit tests
        // hold the rest): a bare LF in a chunk extension, and chunked
        // applied twice. The request hidden behind each is never seen.
        (
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
              2;\nxx\r\n24\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n\r\n0\r\n\r\n"
                .to_vec(),
            400,
        ),
        (
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\
              Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"
                .to_vec(),
            400,
        ),
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400),
    ] {
        let mut client = connect(server.addr);
        // A good request first: it is answered before the refusal.
        write_all(&mut client, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        write_all(&mut client, &wire);
        assert_eq!(status(&read_response(&mut client).0), 200);
        let (head, _) = read_response(&mut client);
        assert_eq!(status(&head), expected, "{head}");
        assert!(head.contains("Connection: close\r\n"), "{head}");
        // Then the connection ends: bytes the client sent past the refusal
        // are read and discarded (a lingering close), so the kernel ends
        // it with FIN rather than a reset, and nothing more comes.
        let mut rest = Vec::new();
        client
            .read_to_end(&mut rest)
            .expect("end of file, not a reset");
        assert!(rest.is_empty(), "{rest:?}");
    }
    write_all(&mut keeper, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(read_response(&mut keeper).1, b"Hello, World!");
}
per_backend!(errors_get_their_status_and_the_server_carries_on);

fn http_1_0_keeps_the_connection_only_when_asked_and_close_is_honoured(backend: BackendKind) {
    let server = start_example(
        "http_server",
        &["--backend", backend.name(), "--max-requests", "3"],
    );
    let mut old = connect(server.addr);
    write_all(&mut old, b"GET / HTTP/1.0\r\n\r\n");
    let (head, _) = read_response(&mut old);
    assert!(head.contains("Connection: close\r\n"), "{head}");
    let mut rest = Vec::new();
    old.read_to_end(&mut rest).unwrap();

    let mut kept = connect(server.addr);
    for _ in 0..2 {
        write_all(
            &mut kept,
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        );
        assert!(read_response(&mut kept)
            .0
            .contains("Connection: keep-alive\r\n"));
    }
    // The third request reaches --max-requests: answered, then closed.
    write_all(
        &mut kept,
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    assert!(read_response(&mut kept).0.contains("Connection: close\r\n"));
    kept.read_to_end(&mut rest).unwrap();

    let mut closing = connect(server.addr);
    write_all(
        &mut closing,
        b"GET /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(read_response(&mut closing)
        .0
        .contains("Connection: close\r\n"));
    closing.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}
per_backend!(http_1_0_keeps_the_connection_only_when_asked_and_close_is_honoured);

/// `Expect: 100-continue`: the client sends the head alone and waits; the
/// server answers `100 Continue` before any body byte has come, then the
/// final answer once the body is in. A body too large is refused at once,
/// before it is sent. Absolute-form targets are routed by their path.
fn expect_continue_is_answered_before_the_body(backend: BackendKind) {
    let server = start_example(
        "http_server",
        &["--backend", backend.name(), "--max-body", "64"],
    );
    let mut client = connect(server.addr);
    for (head, body) in [
        (
            &b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
                [..],
            &b"hello"[..],
        ),
        (
            b"POST http://t/echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n\
              Transfer-Encoding: chunked\r\n\r\n",
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        ),
    ] {
        write_all(&mut client, head);
        assert_eq!(read_n(&mut client, 25), b"HTTP/1.1 100 Continue\r\n\r\n");
        write_all(&mut client, body);
        let (head, echoed) = read_response(&mut client);
        assert_eq!(status(&head), 200, "{head}");
        assert!(echoed == b"hello" || echoed == b"abcde", "{echoed:?}");
    }
    // Too large: the final status at once, no 100.
    write_all(
        &mut client,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 65\r\n\r\n",
    );
    let (head, _) = read_response(&mut client);
    assert_eq!(status(&head), 413, "{head}");
}
per_backend!(expect_continue_is_answered_before_the_body);

/// HEAD never carries a body, on the error path too: a file that cannot be
/// read answers 403, and to HEAD without the body that would otherwise be
/// read as the start of the next response. (`/proc/sys/vm/drop_caches` is
/// a regular file that no one, root included, may open for reading.)
fn head_of_an_unreadable_file_has_no_body(backend: BackendKind) {
    let server = serve_root(backend, std::path::Path::new("/proc/sys/vm"));
    let mut client = connect(server.addr);
    write_all(
        &mut client,
        b"HEAD /drop_caches HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /drop_caches HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let head = read_head(&mut client);
    assert_eq!(status(&head), 403, "{head}");
    assert!(head.contains("Content-Length: 4\r\n"), "{head}");
    let (head, body) = read_response(&mut client);
    assert_eq!(
        (status(&head), body.as_slice()),
        (403, &b"403\n"[..]),
        "{head}"
    );
    let (head, body) = read_response(&mut client);
    assert_eq!(
        (status(&head), body.as_slice()),
        (200, &b"Hello, World!"[..]),
        "{head}"
    );
}
per_backend!(head_of_an_unreadable_file_has_no_body);

/// Static files answer ranges and conditional requests as nginx does:
/// `curl -C -` resumes a cut download, `--etag-compare` and `-z` get 304,
/// a range past the end gets 416 with the length.
fn curl_resumes_and_revalidates_files(backend: BackendKind) {
    let dir = scratch_dir("http-ranges", backend);
    std::fs::create_dir_all(&dir).unwrap();
    // Larger than one piece (256 KiB), so the range is streamed too.
    let content: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    let original = dir.join("big.bin");
    std::fs::write(&original, &content).unwrap();
    let server = serve_root(backend, &dir);
    let url = format!("http://{}/big.bin", server.addr);
    // A download cut after 123,457 bytes, resumed.
    let partial = dir.join("download.bin");
    std::fs::write(&partial, &content[..123_457]).unwrap();
    let code = curl(&[
        "-C",
        "-",
        "-o",
        partial.to_str().unwrap(),
        "-w",
        "%{http_code}",
        &url,
    ]);
    assert_eq!(code, "206");
    assert!(
        std::fs::read(&partial).unwrap() == content,
        "resumed file differs"
    );
    // Revalidation by entity tag and by date.
    let etag = dir.join("etag.txt");
    let etag = etag.to_str().unwrap();
    assert_eq!(
        curl(&[
            "--etag-save",
            etag,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &url
        ]),
        "200"
    );
    let again = curl(&[
        "--etag-compare",
        etag,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &url,
    ]);
    assert_eq!(again, "304");
    let since = curl(&[
        "-z",
        original.to_str().unwrap(),
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &url,
    ]);
    assert_eq!(since, "304");
    // Raw: a 304 has no body, a 416 names the length, the connection goes on.
    let mut client = connect(server.addr);
    write_all(
        &mut client,
        b"GET /big.bin HTTP/1.1\r\nHost: t\r\nIf-None-Match: *\r\n\r\n\
          GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=700000-\r\n\r\n\
          GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=-3\r\n\r\n",
    );
    assert_eq!(status(&read_head(&mut client)), 304);
    let (head, _) = read_response(&mut client);
    assert_eq!(status(&head), 416, "{head}");
    assert!(head.contains("Content-Range: bytes */700000\r\n"), "{head}");
    let (head, tail) = read_response(&mut client);
    assert_eq!(status(&head), 206, "{head}");
    assert!(
        head.contains("Content-Range: bytes 699997-699999/700000\r\n"),
        "{head}"
    );
    assert_eq!(tail, &content[699_997..]);
    let _ = std::fs::remove_dir_all(&dir);
}
per_backend!(curl_resumes_and_revalidates_files);

#[cfg(unix)]
fn static_files_are_served_and_never_from_outside_the_root(backend: BackendKind) {
    let dir = scratch_dir("http-root", backend);
    let root = dir.join("site");
    std::fs::create_dir_all(root.join("css")).unwrap();
    std::fs::write(root.join("index.html"), "<p>home</p>").unwrap();
    std::fs::write(root.join("css/site.css"), "p{}").unwrap();
    std::fs::write(dir.join("secret.txt"), "secret").unwrap();
    let _ = std::os::unix::fs::symlink(dir.join("secret.txt"), root.join("link.txt"));
    let server = serve_root(backend, &root);
    let mut client = connect(server.addr);
    for (path, expected_status, expected_body, kind) in [
        ("/index.html", 200, &b"<p>home</p>"[..], Some("text/html")),
        ("/css/site.css", 200, b"p{}", Some("text/css")),
        ("/../secret.txt", 404, b"404\n", None),
        ("/css/../../secret.txt", 404, b"404\n", None),
        ("/link.txt", 404, b"404\n", None),
    ] {
        write_all(
            &mut client,
            format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
        );
        let (head, body) = read_response(&mut client);
        assert_eq!(status(&head), expected_status, "{path}: {head}");
        assert_eq!(body, expected_body, "{path}");
        if let Some(kind) = kind {
            assert!(head.contains(&format!("Content-Type: {kind}")), "{head}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
#[cfg(unix)]
per_backend!(static_files_are_served_and_never_from_outside_the_root);

fn curl_gets_posts_and_sends_chunks(backend: BackendKind) {
    let server = start_example("http_server", &["--backend", backend.name()]);
    let base = format!("http://{}", server.addr);
    assert_eq!(curl(&[&format!("{base}/")]), "Hello, World!");
    assert_eq!(
        curl(&[&format!("{base}/json")]),
        r#"{"message":"Hello, World!"}"#
    );
    assert_eq!(
        curl(&["--data-binary", "posted body", &format!("{base}/echo")]),
        "posted body"
    );
    assert_eq!(
        curl(&[
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            "sent in chunks",
            &format!("{base}/echo"),
        ]),
        "sent in chunks"
    );
    // Two URLs on one connection: curl reuses it (keep-alive).
    let both = curl(&["-v", &format!("{base}/"), &format!("{base}/json")]);
    assert_eq!(both, "Hello, World!{\"message\":\"Hello, World!\"}");
    let status = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{base}/missing"),
    ]);
    assert_eq!(status, "404");
    // An upload with `Expect: 100-continue` (curl sends it by itself for
    // large and, in newer versions, chunked uploads): curl waits for the
    // 100, here up to 30 s, past --max-time, so a server that never sends
    // it fails the test rather than slowing it.
    let upload = util::tool("curl")
        .args(["-sS", "-v", "--max-time", "10", "--expect100-timeout", "30"])
        .args([
            "-H",
            "Transfer-Encoding: chunked",
            "-H",
            "Expect: 100-continue",
        ])
        .args(["--data-binary", "waited"])
        .arg(format!("{base}/echo"))
        .output()
        .expect("run curl");
    let log = String::from_utf8_lossy(&upload.stderr);
    assert!(upload.status.success(), "{log}");
    assert!(log.contains("> Expect: 100-continue"), "{log}");
    assert!(log.contains("< HTTP/1.1 100 Continue"), "{log}");
    assert_eq!(upload.stdout, b"waited");
}
per_backend!(curl_gets_posts_and_sends_chunks);

fn ab_keep_alive_and_wrk_run_against_it_without_errors(backend: BackendKind) {
    let server = start_example("http_server", &["--backend", backend.name()]);
    let url = format!("http://{}/", server.addr);
    let output = util::tool("ab")
        .args(["-k", "-n", "2000", "-c", "10", &url])
        .output()
        .expect("run ab");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("Complete requests:      2000"), "{text}");
    assert!(text.contains("Failed requests:        0"), "{text}");
    assert!(text.contains("Keep-Alive requests:    2000"), "{text}");

    let output = util::tool("wrk")
        .args(["-t1", "-c10", "-d1s", &url])
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("Requests/sec:"), "{text}");
    assert!(!text.contains("Non-2xx"), "{text}");
    assert!(!text.contains("Socket errors"), "{text}");
}
per_backend!(ab_keep_alive_and_wrk_run_against_it_without_errors);

/// The server's peak resident memory (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmHWM")
}

/// A file larger than the loop's output limit (32 MiB) is sent a piece at
/// a time as the client reads it: byte-exact, with the server's memory far
/// below the file's size, and a request pipelined behind it answered after
/// it. HEAD gets the same head without the body, and percent-encoded paths
/// are decoded (and still refused outside the root).
fn large_files_stream_and_head_and_escapes(backend: BackendKind) {
    const SIZE: usize = 40 * 1024 * 1024;
    let dir = std::env::temp_dir().join(format!(
        "http-big-{}-{}",
        std::process::id(),
        backend.name()
    ));
    let root = dir.join("site");
    std::fs::create_dir_all(&root).unwrap();
    let pattern = |i: usize| (i % 251) as u8;
    let content: Vec<u8> = (0..SIZE).map(pattern).collect();
    std::fs::write(root.join("big.bin"), &content).unwrap();
    std::fs::write(root.join("a b.txt"), "spaced").unwrap();
    std::fs::write(dir.join("secret.txt"), "secret").unwrap();
    let server = serve_root(backend, &root);
    let mut client = connect(server.addr);
    write_all(
        &mut client,
        b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /json HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let (head, body) = read_response(&mut client);
    assert_eq!(status(&head), 200, "{head}");
    assert!(
        head.contains(&format!("Content-Length: {SIZE}\r\n")),
        "{head}"
    );
    assert!(body == content, "the file came back changed");
    let (head, body) = read_response(&mut client);
    assert_eq!(status(&head), 200, "{head}");
    assert_eq!(
        body, br#"{"message":"Hello, World!"}"#,
        "the pipelined answer follows the file"
    );
    let peak = peak_rss_kib(server.child.id());
    assert!(
        peak < 16 * 1024,
        "the server peaked at {peak} KiB for a 40 MiB file"
    );

    // HEAD: the GET's head, no body; the next answer follows at once.
    write_all(
        &mut client,
        b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\nHEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    for expected_length in ["13", &SIZE.to_string(), "13"] {
        let head = read_head(&mut client);
        assert_eq!(status(&head), 200, "{head}");
        assert!(
            head.contains(&format!("Content-Length: {expected_length}\r\n")),
            "{head}"
        );
    }
    // Only the last (a GET) has a body: had a HEAD sent one, its bytes
    // would stand where the next head or this body is read.
    assert_eq!(read_n(&mut client, 13), b"Hello, World!");

    for (path, expected) in [
        ("/a%20b.txt", 200),
        ("/big%2Ebin", 200),
        ("/%2e%2e/secret.txt", 404),
        ("/..%2Fsecret.txt", 404),
        ("/a%2", 404),
    ] {
        write_all(
            &mut client,
            format!("HEAD {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
        );
        let head = read_head(&mut client);
        assert_eq!(status(&head), expected, "{path}: {head}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
per_backend!(large_files_stream_and_head_and_escapes);

/// `--threads 2`: two reactors serve one address, each with its own
/// handler and `Date` clock.
fn two_threads_answer_on_one_address(backend: BackendKind) {
    // SO_REUSEPORT spreads connections on Linux only.
    let balances: &[&str] = if cfg!(target_os = "linux") {
        &["reuseport", "acceptor"]
    } else {
        &["acceptor"]
    };
    for &balance in balances {
        let server = start_example(
            "http_server",
            &[
                "--backend",
                backend.name(),
                "--threads",
                "2",
                "--balance",
                balance,
            ],
        );
        for _ in 0..20 {
            let mut client = connect(server.addr);
            write_all(&mut client, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
            let (head, body) = read_response(&mut client);
            assert_eq!(status(&head), 200, "{balance}: {head}");
            assert!(head.contains("\r\nDate: "), "{head}");
            assert_eq!(body, b"Hello, World!");
        }
    }
}
per_backend!(two_threads_answer_on_one_address);
