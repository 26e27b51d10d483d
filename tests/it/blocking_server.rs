//! The blocking server of the seed notes' socketserver chapter: one client
//! at a time without threads (a second client waits for the first to
//! leave), every client at once with a thread each; and the threading
//! chapter's tools (`examples/threads_and_queues.rs`).

use crate::util;

use std::io::Read;
use std::time::Duration;

use util::{connect, read_n, start_example, write_all, GREETING};

/// Whether `client` is greeted within `wait`.
fn greeted_within(client: &mut std::net::TcpStream, wait: Duration) -> bool {
    client.set_read_timeout(Some(wait)).unwrap();
    let mut greeting = [0u8; 17];
    let greeted = client.read_exact(&mut greeting).is_ok();
    client.set_read_timeout(Some(util::PATIENCE)).unwrap();
    greeted && greeting == *GREETING
}

#[test]
fn without_threads_a_second_client_waits_for_the_first_to_leave() {
    let server = start_example("blocking_server", &[]);
    let mut first = connect(server.addr);
    assert_eq!(read_n(&mut first, GREETING.len()), GREETING);
    let mut second = connect(server.addr); // connected: the backlog took it
    assert!(
        !greeted_within(&mut second, Duration::from_millis(300)),
        "the second client was served while the first was"
    );
    write_all(&mut first, b"one");
    assert_eq!(read_n(&mut first, 13), b"response: one");
    drop(first);
    assert!(greeted_within(&mut second, util::PATIENCE), "never served");
    write_all(&mut second, b"two");
    assert_eq!(read_n(&mut second, 13), b"response: two");
}

#[test]
fn with_a_thread_each_every_client_is_served_at_once() {
    let server = start_example("blocking_server", &["--threads"]);
    let mut clients: Vec<_> = (0..10).map(|_| connect(server.addr)).collect();
    for client in &mut clients {
        assert!(greeted_within(client, util::PATIENCE));
    }
    for (i, client) in clients.iter_mut().enumerate() {
        write_all(client, format!("{i}").as_bytes());
        assert_eq!(read_n(client, 11), format!("response: {i}").as_bytes());
    }
}

#[test]
fn the_threading_tools_of_the_notes_behave_as_in_python() {
    let text = util::demo_output("threads_and_queues");
    for line in [
        "Lock: ten threads took one each from 10, leaving 0",
        "RLock: two nested decrements under one guard, leaving 8",
        "Condition: notify(3) let 3 through, then all 10",
        "Queue(maxsize=2): [1, 2, 3, 4, 5]",
        "LifoQueue: [3, 2, 1]",
        "PriorityQueue: [\"urgent\", \"normal\", \"low\"]",
        "join: the worker returned 5050",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert_eq!(text.lines().count(), 9, "{text}");
}
