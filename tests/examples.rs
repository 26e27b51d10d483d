//! The example programs, run as processes and driven over TCP and stdin.

mod util;

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
