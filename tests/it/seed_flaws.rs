//! The seed's flaws, shown happening: the seed's algorithm
//! (`examples/select_server.py`, flaws kept) and its literal Rust port
//! (`examples/select_literal.rs`, four lines fixed) are sent the same
//! bytes, and each test asserts what the seed does wrong and what the port
//! does instead. The book's seed-flaws chapter includes them.
//!
//! To make a race certain, a test stops the server process (`SIGSTOP`)
//! while the client sends, so that everything the client sent is waiting
//! when the server looks. They run the seed with python3, which
//! `cargo xtask test` installs where it is missing.

use crate::util;

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use util::{connect, read_n, read_to_end, start_example, start_process, write_all, Running};
use util::{wait_until, GREETING};

/// The seed's algorithm in Python (python3 is one of the tests' tools).
fn start_seed() -> Running {
    let script = util::python_script("select_server.py");
    let mut command = Command::new("python3");
    command
        .arg(script)
        .args(["--addr", "127.0.0.1:0", "--quiet"]);
    start_process(command)
}

/// Runs `while_stopped` with the server process stopped, then lets it go
/// on: whatever the client sent meanwhile is all queued when it looks.
fn with_server_stopped(server: &Running, while_stopped: impl FnOnce()) {
    let pid = server.child.id() as libc::pid_t;
    // SAFETY: kill only sends a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    while_stopped();
    // Bytes written on loopback are queued at the receiver when write
    // returns; a moment more covers the FIN of a close.
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
}

fn greeted(server: &Running) -> std::net::TcpStream {
    let mut client = connect(server.addr);
    assert_eq!(read_n(&mut client, GREETING.len()), GREETING);
    client
}

// ANCHOR: lifo
/// 1,027 bytes in one write: `recv(1024)` takes 1,024 of them in one turn
/// and the last 3 (`two`) in the next, while the first answer is still
/// due. The seed's `message[w].pop()` then answers the newest first.
#[test]
fn the_seed_answers_the_newest_chunk_first() {
    let seed = start_seed();
    let port = start_example("select_literal", &[]);
    let first_chunk = vec![b'a'; 1024];
    let request = [first_chunk.as_slice(), b"two"].concat();
    let answer_to_first = [b"response: ".as_slice(), &first_chunk].concat();

    let mut client = greeted(&seed);
    write_all(&mut client, &request);
    assert_eq!(
        read_n(&mut client, 13),
        b"response: two",
        "the seed: newest first"
    );
    assert_eq!(read_n(&mut client, answer_to_first.len()), answer_to_first);

    let mut client = greeted(&port);
    write_all(&mut client, &request);
    assert_eq!(
        read_n(&mut client, answer_to_first.len()),
        answer_to_first,
        "the port: oldest first"
    );
    assert_eq!(read_n(&mut client, 13), b"response: two");
}
// ANCHOR_END: lifo

// ANCHOR: leaves
/// A client sends a byte and leaves before its answer is written: the seed
/// deletes `message[r]` when it reads the end of input, then looks it up
/// for the answer still due (`KeyError`), and stops for every client.
#[test]
fn the_seed_stops_for_everyone_when_a_client_leaves_with_an_answer_due() {
    let mut seed = start_seed();
    let mut steady = greeted(&seed);
    let mut leaver = greeted(&seed);
    with_server_stopped(&seed, || {
        leaver.write_all(b"x").unwrap();
        drop(leaver);
    });
    let status = wait_until("the seed to exit", || seed.child.try_wait().unwrap());
    assert!(!status.success());
    assert!(seed.log().contains("KeyError"), "{}", seed.log());
    assert_eq!(
        read_to_end(&mut steady).unwrap(),
        b"",
        "the steady client lost its server"
    );

    let port = start_example("select_literal", &[]);
    let mut steady = greeted(&port);
    let mut leaver = greeted(&port);
    with_server_stopped(&port, || {
        leaver.write_all(b"x").unwrap();
        drop(leaver);
    });
    write_all(&mut steady, b"still here");
    assert_eq!(
        read_n(&mut steady, 20),
        b"response: still here",
        "the port goes on"
    );
}
// ANCHOR_END: leaves

// ANCHOR: merged
/// Two sends, one `recv`: TCP carries bytes, and `recv(1024)` returns all
/// that is there. Both the seed and its literal port answer `onetwo`; the
/// cure is framing (the framing chapter), not a fix to the loop.
#[test]
fn two_sends_can_come_back_as_one_answer() {
    let seed = start_seed();
    let port = start_example("select_literal", &[]);
    for server in [&seed, &port] {
        let mut client = greeted(server);
        with_server_stopped(server, || {
            client.write_all(b"one").unwrap();
            client.write_all(b"two").unwrap();
        });
        assert_eq!(read_n(&mut client, 16), b"response: onetwo");
    }
}
// ANCHOR_END: merged
