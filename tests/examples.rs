//! The example programs, run as processes and driven over TCP and stdin.

mod util;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use util::{connect, read_n, write_all, GREETING};

/// Path of a built example; builds it if `cargo test` has not already.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test binary> -> target/<profile>/examples/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory")
        .join("examples");
    let path = dir.join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--example", name])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cannot build example {name}");
    }
    path
}

/// A running example server, killed when dropped.
struct Running {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts an example server on port 0 and reads the address it prints first.
fn start_server(name: &str, extra: &[&str]) -> Running {
    let mut child = Command::new(example(name))
        .args(["--addr", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn server");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .expect("an address");
    Running { child, addr }
}

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
