//! The completion half on real loopback sockets: what the loop reads and
//! writes through a [`RingStream`], and what happens to the kernel's
//! entries when it lets go of one.

use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Instant;

use super::slot::HOLD;
use super::*;

const PATIENCE: Duration = Duration::from_secs(10);

/// A backend serving connections by completions, one such connection
/// registered for READABLE under `Token(5)`, and its peer (blocking, with
/// a timeout).
fn served() -> (UringBackend, RingStream, TcpStream) {
    let (backend, mut served) = served_many(64, buffers::COUNT, 5..6, Interest::READABLE);
    let (stream, peer) = served.pop().expect("one connection");
    (backend, stream, peer)
}

/// A backend with `buffers` receive buffers that reports `capacity`
/// descriptors a poll at most, serving a connection for each token of
/// `tokens`, registered for `interest`; each with its peer (blocking,
/// with a timeout).
fn served_many(
    capacity: usize,
    buffers: u16,
    tokens: std::ops::Range<usize>,
    interest: Interest,
) -> (UringBackend, Vec<(RingStream, TcpStream)>) {
    let (mut backend, streams) =
        UringBackend::with_streams_and_buffers(capacity, buffers).expect("io_uring here");
    let streams = streams.expect("provided buffers on this kernel");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let served = tokens
        .map(|token| {
            let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            peer.set_read_timeout(Some(PATIENCE)).unwrap();
            let (ours, _) = listener.accept().unwrap();
            let stream = streams.adopt(ours.into(), false).unwrap();
            backend.add(stream.fd(), Token(token), interest).unwrap();
            (stream, peer)
        })
        .collect();
    (backend, served)
}

/// Asks to write too (and still to read), as the loop does when a write
/// would block.
fn want_to_write(backend: &mut UringBackend, stream: &RingStream) {
    backend
        .modify(
            stream.fd(),
            Token(5),
            Interest::READABLE | Interest::WRITABLE,
        )
        .unwrap();
}

/// Writes all of `data` as the loop does (two slices a write, as its
/// vectored writes give them; waiting for room when the driver has none)
/// and polls until the driver has sent the last byte.
fn write_all_through(backend: &mut UringBackend, stream: &mut RingStream, data: &[u8]) {
    let mut written = 0;
    let started = Instant::now();
    while written < data.len() {
        assert!(started.elapsed() < PATIENCE, "stuck at {written}");
        let rest = &data[written..];
        let (a, b) = rest.split_at(rest.len() / 2);
        match stream.write(&[IoSlice::new(a), IoSlice::new(b)]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                want_to_write(backend, stream);
                poll_until(backend, |e| e.writable);
            }
            Err(e) => panic!("write failed at {written}: {e}"),
        }
        backend.submit().unwrap();
    }
    while stream.sending() {
        assert!(started.elapsed() < PATIENCE, "the last bytes never went");
        poll_for(backend, Duration::from_millis(10));
    }
}

/// Writes 64 KiB at a time to a peer that reads nothing until the driver
/// says `WouldBlock`, then submits: a send waits in the kernel.
fn fill_until_a_send_waits(backend: &mut UringBackend, stream: &mut RingStream) {
    let chunk = [1u8; 64 * 1024];
    loop {
        match stream.write(&[IoSlice::new(&chunk)]) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("write failed: {e}"),
        }
        poll_for(backend, Duration::from_millis(5));
    }
    backend.submit().unwrap();
}

fn poll_for(backend: &mut UringBackend, wait: Duration) -> Vec<Readiness> {
    let mut events = Vec::new();
    backend.poll(&mut events, Some(wait)).unwrap();
    events
}

/// Polls until an event for `Token(5)` satisfies `wanted`.
fn poll_until(backend: &mut UringBackend, wanted: impl Fn(&Readiness) -> bool) -> Readiness {
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < PATIENCE, "no such event came");
        let events = poll_for(backend, Duration::from_millis(50));
        if let Some(event) = events
            .into_iter()
            .find(|e| e.token == Token(5) && wanted(e))
        {
            return event;
        }
    }
}

/// Reads what is held, up to `WouldBlock` or the end.
fn read_held(stream: &mut RingStream) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 1000];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return (got, false),
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

/// Reads as the loop does, `size` bytes at a time: until `WouldBlock`,
/// the end, or a short read (which the loop takes as "nothing more for
/// now" and waits for news).
fn read_as_the_loop_does(stream: &mut RingStream, size: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; size];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if n < buf.len() {
                    return got;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return got,
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

/// The peer sends `data`, and the ring's completions are reaped until
/// `stream` holds it too.
fn send_and_hold(
    backend: &mut UringBackend,
    stream: &RingStream,
    peer: &mut TcpStream,
    data: &[u8],
) {
    let before = held(backend, stream.fd());
    peer.write_all(data).unwrap();
    reap_until_held(backend, stream, before + data.len());
}

/// Reaps the ring's completions, without reading and without a poll
/// (which would copy out what is lent), until `stream` holds `bytes`.
fn reap_until_held(backend: &mut UringBackend, stream: &RingStream, bytes: usize) {
    let started = Instant::now();
    while held(backend, stream.fd()) < bytes {
        assert!(
            started.elapsed() < PATIENCE,
            "{} held",
            held(backend, stream.fd())
        );
        reap_without_polling(backend);
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Reads the completions waiting, then enters the ring so that the
/// kernel runs the work that makes more: what a poll does, less the copy
/// of lent buffers before its wait.
fn reap_without_polling(backend: &mut UringBackend) {
    backend.reap().unwrap();
    backend.driver.driver().ring.submit().unwrap();
}

fn held(backend: &UringBackend, fd: RawFd) -> usize {
    let mut driver = backend.driver.driver();
    driver.table.slot(fd).map_or(0, |slot| slot.held())
}

mod accept;
mod close;
mod footprint;
mod lend;
mod receive;
mod send;
mod wait;
