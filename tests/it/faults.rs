//! Peers that half-close or reset, hundreds of times: every answer owed is
//! delivered, every connection is counted, nothing panics.

use crate::util;

use util::BackendKind;

use std::io::Write;
use std::net::Shutdown;
use std::thread;
use std::time::Duration;

use selectloop::codec::Lines;
use selectloop::Config;
use util::{connect, Echo, Server};

/// A client writes N lines, shuts down its sending side, and reads to the
/// end: exactly its N answers come back, then end of file.
fn half_closed_clients_get_exactly_their_answers_500_times(backend: BackendKind) {
    let server = Server::start(
        Config::new().backend(backend).codec(Lines::new(256)),
        Echo::default(),
    );
    let addr = server.addr;
    let workers: Vec<_> = (0..10)
        .map(|worker| {
            thread::spawn(move || {
                for i in 0..50 {
                    let n = (worker * 50 + i) % 7 + 1;
                    let mut client = connect(addr);
                    let mut sent = Vec::new();
                    for k in 0..n {
                        sent.extend_from_slice(format!("w{worker} c{i} line {k}\n").as_bytes());
                    }
                    client.write_all(&sent).unwrap();
                    client.shutdown(Shutdown::Write).unwrap();
                    let got = util::read_to_end(&mut client).expect("read to end");
                    assert_eq!(got, sent, "worker {worker} client {i}");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("half-close worker");
    }
    let stats = server.wait_for("500 closes", |s| s.closed == 500);
    assert_eq!(stats.closed_by_peer, 500);
    assert_eq!(stats.resets + stats.errors, 0);
}
per_backend!(half_closed_clients_get_exactly_their_answers_500_times);

/// A client sends, then closes with SO_LINGER 0: the kernel sends RST with
/// data possibly still in flight both ways. Each one is closed and counted;
/// the server never panics and keeps serving.
fn resets_with_data_in_flight_are_counted_500_times(backend: BackendKind) {
    let server = Server::start(
        Config::new().backend(backend).codec(Lines::new(256)),
        Echo::default(),
    );
    for i in 0..500 {
        let mut client = connect(server.addr);
        client
            .write_all(
                format!("message {i} that will not be read\n")
                    .repeat(20)
                    .as_bytes(),
            )
            .unwrap();
        if i % 2 == 0 {
            // Let the echo start, so the reset meets output in flight too.
            thread::sleep(Duration::from_micros(200));
        }
        socket2::SockRef::from(&client)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(client);
    }
    if cfg!(windows) {
        // Winsock may drop a connection reset before it is accepted, or
        // fail its accept: what is accepted is closed and counted, and the
        // listener serves on.
        let mut after = connect(server.addr);
        after.write_all(b"alive?\n").unwrap();
        assert_eq!(util::read_n(&mut after, 7), b"alive?\n");
        let stats = server.wait_for("every other accepted connection's close", |s| {
            s.closed + 1 == s.accepted
        });
        assert_eq!(
            stats.resets + stats.closed_by_peer,
            stats.closed,
            "{stats:?}"
        );
        return;
    }
    let stats = server.wait_for("500 closes", |s| s.closed == 500);
    assert_eq!(stats.accepted, 500);
    assert!(stats.resets > 0, "no reset was seen: {stats:?}");
    assert_eq!(
        stats.resets + stats.closed_by_peer,
        500,
        "every close is a reset or an end of input: {stats:?}"
    );
    // Still serving.
    let mut after = connect(server.addr);
    after.write_all(b"alive?\n").unwrap();
    assert_eq!(util::read_n(&mut after, 7), b"alive?\n");
}
per_backend!(resets_with_data_in_flight_are_counted_500_times);
