//! From readiness to completion. *Exercise:* the handler never knows.
//! Serve one client with a handler that answers each line in capitals,
//! on the backend you are given, and return the answers with the name of
//! the backend that ran: every backend, io_uring's completions included,
//! must give the same bytes.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use selectloop::backend::BackendKind;
use selectloop::codec::Lines;
use selectloop::{Config, ConnId, Context, Reactor};

#[cfg(not(feature = "exercises"))]
#[path = "solutions/completion.rs"]
mod answer;
#[cfg(feature = "exercises")]
#[path = "../../exercises/completion.rs"]
mod answer;
use answer::*;

const EVERY_BACKEND: [BackendKind; 4] = [
    BackendKind::Epoll,
    BackendKind::Poll,
    BackendKind::Select,
    BackendKind::Uring,
];

#[test]
fn every_backend_gives_the_same_answers() {
    for backend in EVERY_BACKEND {
        let (answers, name) = shout_on(backend, b"one\ntwo\nthree\n").unwrap();
        assert_eq!(answers, b"ONE\nTWO\nTHREE\n", "on {backend:?}");
        let expected = match backend {
            BackendKind::Poll => "poll",
            BackendKind::Select => "select",
            // Where io_uring is refused, the reactor runs on epoll.
            BackendKind::Uring if name == "epoll" => "epoll",
            BackendKind::Uring => "uring",
            _ => "epoll",
        };
        assert_eq!(name, expected, "the name of the backend that ran");
    }
}

#[test]
fn a_request_larger_than_a_receive_buffer_comes_back_whole() {
    // Many of the ring's 4 KiB receive buffers, and many sends.
    let request: Vec<u8> = (0..20_000)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    for backend in EVERY_BACKEND {
        let (answers, _) = shout_on(backend, &request).unwrap();
        assert!(
            answers == request.to_ascii_uppercase(),
            "on {backend:?}: {} bytes back of {}",
            answers.len(),
            request.len()
        );
    }
}
