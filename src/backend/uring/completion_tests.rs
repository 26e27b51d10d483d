//! The completion half on real loopback sockets: what the loop reads and
//! writes through a [`RingStream`], and what happens to the kernel's
//! entries when it lets go of one.

use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Instant;

use super::table::HOLD;
use super::*;

const PATIENCE: Duration = Duration::from_secs(10);

/// A backend serving connections by completions, one such connection
/// registered for READABLE under `Token(5)`, and its peer (blocking, with
/// a timeout).
fn served() -> (UringBackend, RingStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    peer.set_read_timeout(Some(PATIENCE)).unwrap();
    let (ours, _) = listener.accept().unwrap();
    let (mut backend, streams) = UringBackend::with_streams(64).expect("io_uring here");
    let streams = streams.expect("provided buffers on this kernel");
    let stream = streams.adopt(ours.into(), false).unwrap();
    backend
        .add(stream.fd(), Token(5), Interest::READABLE)
        .unwrap();
    (backend, stream, peer)
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

/// Reads as the loop does: until `WouldBlock`, the end, or a short read
/// (which the loop takes as "nothing more for now" and waits for news).
fn read_as_the_loop_does(stream: &mut RingStream) -> Vec<u8> {
    let mut got = Vec::new();
    // Not a multiple of a ring buffer's 4 KiB: held bytes run out mid-read.
    let mut buf = [0u8; 3000];
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

fn held(backend: &UringBackend, fd: RawFd) -> usize {
    let mut driver = backend.driver.driver();
    driver.table.slot(fd).map_or(0, |slot| slot.held())
}

#[test]
fn bytes_and_the_end_of_input_are_read_in_order_and_reported_together() {
    let (mut backend, mut stream, mut peer) = served();
    poll_for(&mut backend, Duration::ZERO); // the receive is armed
    peer.write_all(b"first ").unwrap();
    peer.write_all(b"second").unwrap();
    peer.shutdown(Shutdown::Write).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    // Bytes and the end in one batch: the report says both, or the loop
    // would take a short read for "drained" and never read the end.
    let event = poll_until(&mut backend, |e| e.readable);
    assert!(event.read_closed, "{event:?}");
    assert!(!event.error);
    assert_eq!(read_held(&mut stream), (b"first second".to_vec(), true));
    assert_eq!(stream.read(&mut [0u8; 8]).unwrap(), 0, "the end stays");
}

#[test]
fn writes_reach_the_peer_byte_exact_through_partial_sends() {
    let (mut backend, mut stream, mut peer) = served();
    const TOTAL: usize = 8 << 20;
    let reader = std::thread::spawn(move || {
        let mut got = vec![0u8; TOTAL];
        peer.read_exact(&mut got).unwrap();
        got
    });
    let data: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8).collect();
    let mut written = 0;
    let started = Instant::now();
    while written < TOTAL {
        assert!(started.elapsed() < PATIENCE, "stuck at {written}");
        let rest = &data[written..];
        // Two slices, as the loop's vectored writes give them.
        let (a, b) = rest.split_at(rest.len() / 2);
        match stream.write(&[IoSlice::new(a), IoSlice::new(b)]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                backend
                    .modify(
                        stream.fd(),
                        Token(5),
                        Interest::READABLE | Interest::WRITABLE,
                    )
                    .unwrap();
                poll_until(&mut backend, |e| e.writable);
            }
            Err(e) => panic!("write failed: {e}"),
        }
        backend.submit().unwrap();
    }
    while stream.sending() {
        assert!(started.elapsed() < PATIENCE, "the last bytes never went");
        poll_for(&mut backend, Duration::from_millis(10));
    }
    assert!(reader.join().unwrap() == data, "bytes differ");
}

#[test]
fn a_full_connection_says_would_block_and_reports_room_when_the_peer_reads() {
    let (mut backend, mut stream, mut peer) = served();
    let chunk = [7u8; 64 * 1024];
    let mut written = 0;
    let blocked = loop {
        match stream.write(&[IoSlice::new(&chunk)]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break true,
            Err(e) => panic!("write failed: {e}"),
        }
        poll_for(&mut backend, Duration::from_millis(5));
        if written > 64 << 20 {
            break false;
        }
    };
    assert!(blocked, "64 MiB went to a peer that reads nothing");
    backend
        .modify(stream.fd(), Token(5), Interest::WRITABLE)
        .unwrap();
    let quiet = poll_for(&mut backend, Duration::from_millis(50));
    assert!(!quiet.iter().any(|e| e.writable), "no room yet: {quiet:?}");
    let reader = std::thread::spawn(move || {
        let mut sink = vec![0u8; written];
        peer.read_exact(&mut sink).unwrap();
    });
    poll_until(&mut backend, |e| e.writable);
    assert!(stream.write(&[IoSlice::new(b"more")]).unwrap() > 0);
    let started = Instant::now();
    while !reader.is_finished() {
        assert!(started.elapsed() < PATIENCE, "the peer never got it all");
        poll_for(&mut backend, Duration::from_millis(5));
    }
}

/// More connections receive at once than the ring has buffers: a
/// receive the kernel ends for want of one is not armed again into the
/// same want (no receive of a dry connection is in the kernel); the loop
/// reads that connection from its socket until it would block, and then
/// its receive is armed again. Every byte arrives, in order.
#[test]
fn connections_the_ring_has_no_buffer_for_are_read_from_their_sockets() {
    const PEERS: usize = 8;
    const SENT: usize = 30 * 1024;
    let (mut backend, streams) =
        UringBackend::with_streams_and_buffers(64, 2).expect("io_uring here");
    let streams = streams.expect("provided buffers on this kernel");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut peers = Vec::new();
    let mut ours = Vec::new();
    for i in 0..PEERS {
        let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let stream = streams.adopt(accepted.into(), false).unwrap();
        backend
            .add(stream.fd(), Token(i), Interest::READABLE)
            .unwrap();
        peers.push(peer);
        ours.push(stream);
    }
    poll_for(&mut backend, Duration::from_millis(10)); // the receives armed
    let send_all = |peers: &mut Vec<TcpStream>, round: u8| {
        for (i, peer) in peers.iter_mut().enumerate() {
            peer.write_all(&vec![i as u8 + round; SENT]).unwrap();
        }
        // On loopback the bytes are in the sockets when write returns.
        std::thread::sleep(Duration::from_millis(50));
    };
    let read_all = |backend: &mut UringBackend, ours: &mut Vec<RingStream>| {
        let mut got = vec![Vec::new(); PEERS];
        let mut dry = 0;
        let started = Instant::now();
        while got.iter().any(|g| g.len() < SENT) {
            assert!(
                started.elapsed() < PATIENCE,
                "stuck at {:?}",
                got.iter().map(Vec::len).collect::<Vec<_>>()
            );
            // Two polls before the loop reads: a dry connection left
            // unread for a turn (its read budget spent, say) must stay
            // out of the kernel.
            let mut events = poll_for(backend, Duration::from_millis(20));
            events.extend(poll_for(backend, Duration::from_millis(1)));
            // Only what was reported is read, as the loop does.
            let reported = |i: usize| events.iter().any(|e| e.token == Token(i) && e.readable);
            for (i, stream) in ours.iter_mut().enumerate() {
                if !reported(i) {
                    continue;
                }
                {
                    let mut driver = backend.driver.driver();
                    let slot = driver.table.slot(stream.fd()).unwrap();
                    if slot.dry {
                        dry += 1;
                        assert_eq!(
                            slot.receive,
                            table::Receive::Idle,
                            "a dry connection's receive is in the kernel"
                        );
                    }
                }
                got[i].extend(read_as_the_loop_does(stream));
            }
        }
        (got, dry)
    };
    let ran_dry = |backend: &UringBackend| backend.driver.driver().table.ran_dry;
    send_all(&mut peers, 0);
    let (got, dry) = read_all(&mut backend, &mut ours);
    // Once each at most: a dry connection's receive waits for the loop to
    // drain it, instead of meeting the same want again every turn.
    assert!(
        ran_dry(&backend) <= PEERS as u64,
        "{} receives ran dry",
        ran_dry(&backend)
    );
    for (i, bytes) in got.iter().enumerate() {
        assert!(
            bytes.iter().all(|&b| b == i as u8),
            "connection {i}'s bytes"
        );
    }
    assert!(
        dry > 0,
        "two buffers served eight connections without running dry"
    );
    // Drained: each receive is armed again, and new bytes come through it.
    poll_for(&mut backend, Duration::from_millis(10));
    for stream in &ours {
        let mut driver = backend.driver.driver();
        let slot = driver.table.slot(stream.fd()).unwrap();
        assert!(
            !slot.dry && slot.receive == table::Receive::Armed,
            "{slot:?}"
        );
    }
    send_all(&mut peers, 100);
    let (got, _) = read_all(&mut backend, &mut ours);
    for (i, bytes) in got.iter().enumerate() {
        assert!(
            bytes.iter().all(|&b| b == i as u8 + 100),
            "connection {i}'s second bytes"
        );
    }
}

/// A peer that resets the connection: the receive fails, and the failure
/// is reported and read as the socket's error (not taken for news of no
/// bytes), after the bytes that came before it.
#[test]
fn a_reset_is_reported_and_read_as_an_error_after_the_bytes_before_it() {
    let (mut backend, mut stream, mut peer) = served();
    peer.write_all(b"before").unwrap();
    poll_until(&mut backend, |e| e.readable);
    socket2::SockRef::from(&peer)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(peer);
    let event = poll_until(&mut backend, |e| e.read_closed);
    assert!(event.readable, "{event:?}");
    let mut buf = [0u8; 64];
    assert_eq!(stream.read(&mut buf).unwrap(), 6);
    assert_eq!(&buf[..6], b"before");
    let error = stream.read(&mut buf).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConnectionReset, "{error}");
    assert_eq!(
        stream.take_error().unwrap().map(|e| e.kind()),
        Some(ErrorKind::ConnectionReset)
    );
}

/// A peer that closes without sending: its end of input is news to read
/// (the loop reads 0 and closes), not only a closed half.
#[test]
fn an_end_of_input_with_no_bytes_before_it_is_reported_readable() {
    let (mut backend, mut stream, peer) = served();
    drop(peer);
    let event = poll_until(&mut backend, |e| e.read_closed);
    assert!(event.readable && !event.error, "{event:?}");
    assert_eq!(read_held(&mut stream), (Vec::new(), true));
}

/// A send to a peer that reset the connection fails, and the failure is
/// what the next write says: the socket's own error, not a made-up one.
#[test]
fn a_failed_send_is_said_by_the_next_write() {
    let (mut backend, mut stream, peer) = served();
    socket2::SockRef::from(&peer)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(peer);
    let chunk = [3u8; 16 * 1024];
    let started = Instant::now();
    let error = loop {
        assert!(started.elapsed() < PATIENCE, "every write was taken");
        match stream.write(&[IoSlice::new(&chunk)]) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => break e,
        }
        poll_for(&mut backend, Duration::from_millis(5));
    };
    assert!(
        matches!(
            error.kind(),
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
        ),
        "{error:?}"
    );
}

/// A poll reports at most the backend's capacity; the rest wait for the
/// next poll, none lost.
#[test]
fn reports_past_the_capacity_wait_for_the_next_poll() {
    let (mut backend, streams) =
        UringBackend::with_streams_and_buffers(2, 512).expect("io_uring here");
    let streams = streams.expect("provided buffers on this kernel");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut kept = Vec::new();
    for i in 0..3 {
        let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let stream = streams.adopt(accepted.into(), false).unwrap();
        // Room to write makes no completion: said on registration.
        backend
            .add(stream.fd(), Token(i), Interest::WRITABLE)
            .unwrap();
        kept.push((peer, stream));
    }
    let first = poll_for(&mut backend, Duration::from_millis(10));
    assert_eq!(first.len(), 2, "{first:?}");
    let second = poll_for(&mut backend, Duration::from_millis(10));
    assert_eq!(second.len(), 1, "{second:?}");
    let mut tokens: Vec<_> = first.iter().chain(&second).map(|e| e.token.0).collect();
    tokens.sort_unstable();
    assert_eq!(tokens, [0, 1, 2]);
}

/// A connection the loop stops reading has its receive cancelled: what
/// the peer sends then stays in the kernel (TCP holds the peer back), not
/// in the driver.
#[test]
fn a_connection_that_stops_reading_has_its_receive_cancelled() {
    let (mut backend, stream, mut peer) = served();
    poll_for(&mut backend, Duration::from_millis(5)); // the receive armed
    let receive = |backend: &UringBackend| {
        let mut driver = backend.driver.driver();
        driver.table.slot(stream.fd()).unwrap().receive
    };
    assert_eq!(receive(&backend), table::Receive::Armed);
    backend
        .modify(stream.fd(), Token(5), Interest::WRITABLE)
        .unwrap();
    let started = Instant::now();
    while receive(&backend) != table::Receive::Idle {
        assert!(
            started.elapsed() < PATIENCE,
            "still {:?}",
            receive(&backend)
        );
        poll_for(&mut backend, Duration::from_millis(5));
    }
    peer.write_all(&[7u8; 10_000]).unwrap();
    for _ in 0..10 {
        poll_for(&mut backend, Duration::from_millis(5));
    }
    assert_eq!(held(&backend, stream.fd()), 0, "received while not reading");
}

/// Room to write is reported as such: not as bytes to read, which none
/// came.
#[test]
fn room_to_write_is_not_reported_as_bytes_to_read() {
    let (mut backend, stream, _peer) = served();
    backend
        .modify(
            stream.fd(),
            Token(5),
            Interest::READABLE | Interest::WRITABLE,
        )
        .unwrap();
    let event = poll_until(&mut backend, |e| e.writable);
    assert!(
        !event.readable && !event.read_closed && !event.error,
        "{event:?}"
    );
}

#[test]
fn bytes_held_while_reading_paused_are_reported_when_it_resumes() {
    let (mut backend, mut stream, mut peer) = served();
    poll_for(&mut backend, Duration::ZERO);
    peer.write_all(b"held").unwrap();
    poll_until(&mut backend, |e| e.readable);
    // The loop pauses reading before it read them, then resumes: no new
    // byte comes, yet the bytes held must be reported again.
    let fd = stream.fd();
    backend.modify(fd, Token(5), Interest::WRITABLE).unwrap();
    poll_for(&mut backend, Duration::from_millis(10));
    backend.modify(fd, Token(5), Interest::READABLE).unwrap();
    let event = poll_until(&mut backend, |e| e.readable);
    assert!(!event.read_closed);
    assert_eq!(read_held(&mut stream), (b"held".to_vec(), false));
}

#[test]
fn a_connection_that_holds_too_much_stops_receiving_until_it_is_read() {
    let (mut backend, mut stream, mut peer) = served();
    const TOTAL: usize = 16 << 20;
    let writer = std::thread::spawn(move || {
        let data: Vec<u8> = (0..TOTAL).map(|i| (i % 241) as u8).collect();
        peer.write_all(&data).unwrap();
        peer
    });
    let fd = stream.fd();
    // The loop reads nothing: what is held reaches the bound (however slow
    // the writer is to start), then, however long the loop goes on without
    // reading, stays near it (one batch of buffers past it at most); the
    // rest waits in the kernel, where TCP holds the peer back.
    let filling = Instant::now();
    while held(&backend, fd) < HOLD {
        assert!(filling.elapsed() < PATIENCE, "{} held", held(&backend, fd));
        poll_for(&mut backend, Duration::from_millis(5));
    }
    for _ in 0..20 {
        poll_for(&mut backend, Duration::from_millis(5));
    }
    let most = HOLD + 2 * 512 * 4096;
    let stopped = held(&backend, fd);
    assert!(stopped <= most, "{stopped} held");
    // The receive is cancelled, not merely slow: nothing more arrives.
    for _ in 0..10 {
        poll_for(&mut backend, Duration::from_millis(5));
    }
    assert_eq!(held(&backend, fd), stopped, "still receiving");
    let mut got = Vec::with_capacity(TOTAL);
    let started = Instant::now();
    while got.len() < TOTAL {
        assert!(started.elapsed() < PATIENCE, "stuck at {}", got.len());
        got.extend(read_held(&mut stream).0);
        poll_for(&mut backend, Duration::from_millis(5));
    }
    assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 241) as u8));
    drop(writer.join().unwrap());
}

#[test]
fn a_write_shutdown_waits_for_the_bytes_before_it() {
    let (mut backend, mut stream, mut peer) = served();
    let data = vec![9u8; 300 * 1024];
    let mut written = 0;
    while written < data.len() {
        match stream.write(&[IoSlice::new(&data[written..])]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                poll_for(&mut backend, Duration::from_millis(5));
            }
            Err(e) => panic!("write failed: {e}"),
        }
    }
    stream.shutdown(Shutdown::Write).unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        got
    });
    let started = Instant::now();
    while stream.sending() {
        assert!(started.elapsed() < PATIENCE);
        poll_for(&mut backend, Duration::from_millis(5));
    }
    assert_eq!(reader.join().unwrap().len(), data.len(), "FIN came early");
}

#[test]
fn a_dropped_connection_closes_at_once_without_another_poll() {
    let (mut backend, stream, mut peer) = served();
    poll_for(&mut backend, Duration::ZERO); // an armed receive holds the file
                                            // Dropped while still registered (the loop deregisters first, but a
                                            // reactor dropped whole does not): no poll follows, so the
                                            // cancellation must go in as the stream is dropped.
    drop(stream);
    let mut buf = [0u8; 8];
    assert_eq!(peer.read(&mut buf).unwrap(), 0, "no FIN");
}

#[test]
fn a_send_in_the_kernel_at_close_is_cancelled_and_its_buffer_kept_until_then() {
    let (mut backend, mut stream, peer) = served();
    // Writing only: no receive in the kernel, so only the send can keep
    // the connection in limbo.
    backend
        .modify(stream.fd(), Token(5), Interest::WRITABLE)
        .unwrap();
    let started = Instant::now();
    loop {
        poll_for(&mut backend, Duration::from_millis(5));
        let mut driver = backend.driver.driver();
        let slot = driver.table.slot(stream.fd()).unwrap();
        if slot.receive == table::Receive::Idle {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the receive was never cancelled"
        );
    }
    let chunk = [1u8; 64 * 1024];
    // The peer reads nothing: fill until a send waits in the kernel.
    loop {
        match stream.write(&[IoSlice::new(&chunk)]) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("write failed: {e}"),
        }
        poll_for(&mut backend, Duration::from_millis(5));
    }
    backend.submit().unwrap();
    drop(stream);
    {
        let driver = backend.driver.driver();
        assert_eq!(driver.table.limbo.len(), 1, "the send's buffer is kept");
        let kept = &driver.table.limbo[0];
        assert!(kept.send_in_kernel() && kept.receive == table::Receive::Idle);
    }
    let started = Instant::now();
    while !backend.driver.driver().table.limbo.is_empty() {
        assert!(
            started.elapsed() < PATIENCE,
            "the cancelled send never ended"
        );
        poll_for(&mut backend, Duration::from_millis(10));
    }
    drop(peer);
}

#[test]
fn dropping_the_backend_waits_for_what_it_cancelled() {
    let (mut backend, mut stream, peer) = served();
    let chunk = [2u8; 64 * 1024];
    while stream.write(&[IoSlice::new(&chunk)]).is_ok() {
        poll_for(&mut backend, Duration::from_millis(5));
    }
    backend.submit().unwrap();
    // The receive and a send are in the kernel; under AddressSanitizer a
    // buffer freed while the kernel still held it would show here.
    drop(backend);
    drop(stream);
    drop(peer);
}
