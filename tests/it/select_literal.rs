//! The seed's protocol, one suite for both of its Rust servers: the literal
//! port (`examples/select_literal.rs`) and the reactor's `select_server`
//! pass the same tests, with the seed's crashes fixed: exact greeting and
//! answer, answers in order, a client that leaves with an answer due
//! disturbs no one, a half-closed client gets what it is owed.

use crate::util;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use util::{connect, read_n, start_example, write_all, GREETING};

/// Runs a case against each server: `both_servers!(case)` turns
/// `fn case(server: &str)` into the tests `case::select_literal` and
/// `case::select_server`.
macro_rules! both_servers {
    ($case:ident) => {
        mod $case {
            #[test]
            fn select_literal() {
                super::$case("select_literal")
            }
            #[test]
            fn select_server() {
                super::$case("select_server")
            }
        }
    };
}

fn greeting_and_answer_are_exact(server_name: &str) {
    let server = start_example(server_name, &[]);
    let mut client = connect(server.addr);
    assert_eq!(read_n(&mut client, GREETING.len()), GREETING);
    write_all(&mut client, b"ping");
    assert_eq!(read_n(&mut client, 14), b"response: ping");
    client
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut more = [0u8; 1];
    assert!(client.read(&mut more).is_err(), "nothing more was sent");
}
both_servers!(greeting_and_answer_are_exact);

/// Chunks that each wait for their answer come back in order (the seed's
/// `pop()` would answer the newest of those queued first).
fn answers_arrive_in_order(server_name: &str) {
    let server = start_example(server_name, &[]);
    let mut clients: Vec<_> = (0..10).map(|_| connect(server.addr)).collect();
    for client in &mut clients {
        assert_eq!(read_n(client, GREETING.len()), GREETING);
    }
    for round in 0..100 {
        for (i, client) in clients.iter_mut().enumerate() {
            write_all(client, format!("{i}:{round:03}").as_bytes());
        }
        for (i, client) in clients.iter_mut().enumerate() {
            let expected = format!("response: {i}:{round:03}");
            assert_eq!(read_n(client, expected.len()), expected.as_bytes());
        }
    }
}
both_servers!(answers_arrive_in_order);

/// The seed stops with `KeyError` for everyone when a client sends and
/// leaves before its answer is written.
fn a_client_that_sends_and_leaves_disturbs_no_one(server_name: &str) {
    let server = start_example(server_name, &[]);
    let mut steady = connect(server.addr);
    assert_eq!(read_n(&mut steady, GREETING.len()), GREETING);
    for i in 0..100 {
        let mut leaver = connect(server.addr);
        leaver.write_all(b"x").unwrap();
        drop(leaver);
        let ping = format!("still {i:03}");
        write_all(&mut steady, ping.as_bytes());
        assert_eq!(
            read_n(&mut steady, 10 + ping.len()),
            format!("response: {ping}").as_bytes()
        );
    }
}
both_servers!(a_client_that_sends_and_leaves_disturbs_no_one);

/// A client that shuts down its sending side still gets its answer, then
/// end of file (the seed dropped it unanswered).
fn a_half_closed_client_gets_its_answer_then_eof(server_name: &str) {
    let server = start_example(server_name, &[]);
    let mut client = connect(server.addr);
    assert_eq!(read_n(&mut client, GREETING.len()), GREETING);
    write_all(&mut client, b"last");
    client.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"response: last");
}
both_servers!(a_half_closed_client_gets_its_answer_then_eof);
