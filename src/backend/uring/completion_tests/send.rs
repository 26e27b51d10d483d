//! Sending: partial sends, room to write, failed sends, and the reports
//! they make; buffers handed over whole.

use std::collections::VecDeque;

use super::slot::SEND_ROOM;
use super::*;

fn send_in_kernel(backend: &UringBackend, fd: RawFd) -> bool {
    let mut driver = backend.driver.driver();
    driver
        .table
        .slot(fd)
        .is_some_and(|slot| slot.send_in_kernel())
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
    write_all_through(&mut backend, &mut stream, &data);
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

/// Room to write is reported as such: not as bytes to read, which none
/// came.
#[test]
fn room_to_write_is_not_reported_as_bytes_to_read() {
    let (mut backend, stream, _peer) = served();
    want_to_write(&mut backend, &stream);
    let event = poll_until(&mut backend, |e| e.writable);
    assert!(
        !event.readable && !event.read_closed && !event.error,
        "{event:?}"
    );
}

/// A poll reports at most the backend's capacity; the rest wait for the
/// next poll, none lost.
#[test]
fn reports_past_the_capacity_wait_for_the_next_poll() {
    // Room to write makes no completion: said on registration.
    let (mut backend, _kept) = served_many(2, buffers::COUNT, 0..3, Interest::WRITABLE);
    let first = poll_for(&mut backend, Duration::from_millis(10));
    assert_eq!(first.len(), 2, "{first:?}");
    // A loop driven from another's wait must run a turn now: no
    // completion will wake the ring's descriptor for the third.
    assert!(backend.has_unsubmitted(), "the third report waits unsaid");
    let second = poll_for(&mut backend, Duration::from_millis(10));
    assert_eq!(second.len(), 1, "{second:?}");
    assert!(!backend.has_unsubmitted(), "nothing is left to say");
    let mut tokens: Vec<_> = first.iter().chain(&second).map(|e| e.token.0).collect();
    tokens.sort_unstable();
    assert_eq!(tokens, [0, 1, 2]);
}

#[test]
fn a_send_to_a_peer_that_reads_late_waits_in_the_kernel() {
    // Small socket buffers at both ends, and a peer that starts reading
    // only after 300 ms: most sends find no room, wait for it inside the
    // ring, and end short, and the driver sends each one's rest, byte-exact.
    // (The ring waits on a non-blocking socket too; only a send handed to
    // its worker threads, which no test can force, honours O_NONBLOCK:
    // see `Streams::adopt`.)
    let (mut backend, mut stream, peer) = served();
    stream
        .socket(|s| s.set_send_buffer_size(16 * 1024))
        .unwrap();
    socket2::SockRef::from(&peer)
        .set_recv_buffer_size(16 * 1024)
        .unwrap();
    const TOTAL: usize = 256 * 1024;
    let data: Vec<u8> = (0..TOTAL).map(|i| (i % 253) as u8).collect();
    let reader = std::thread::spawn(move || {
        let mut peer = peer;
        std::thread::sleep(Duration::from_millis(300));
        let mut got = vec![0u8; TOTAL];
        peer.read_exact(&mut got).map(|()| got)
    });
    write_all_through(&mut backend, &mut stream, &data);
    assert!(reader.join().unwrap().unwrap() == data, "bytes differ");
}

/// A whole buffer handed over is sent from where it lies: the loop gets
/// the connection's emptied buffer back, and the one it handed over comes
/// back to it, unmoved, after it was sent (no copy on the way).
#[test]
fn a_buffer_handed_over_whole_is_sent_without_a_copy() {
    let (mut backend, mut stream, mut peer) = served();
    let mut first: VecDeque<u8> = b"first reply".iter().copied().collect();
    let first_at = first.as_slices().0.as_ptr();
    assert!(stream.write_whole(&mut first));
    assert!(first.is_empty(), "an emptied buffer comes back");
    assert_ne!(first.as_slices().0.as_ptr(), first_at);
    let mut got = [0u8; 11];
    backend.submit().unwrap();
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"first reply");
    while stream.sending() {
        poll_for(&mut backend, Duration::from_millis(10));
    }
    let mut second: VecDeque<u8> = VecDeque::with_capacity(64);
    second.extend(b"second");
    assert!(stream.write_whole(&mut second));
    assert!(second.is_empty(), "the first buffer, emptied");
    // The first buffer's own heap block is back.
    second.extend(b"x");
    assert_eq!(second.as_slices().0.as_ptr(), first_at);
    backend.submit().unwrap();
    let mut got = [0u8; 6];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"second");
}

/// Behind a send in the kernel, a whole buffer waits as the next send;
/// one more is refused (it would go after it: `write` copies); and the peer gets them all in order.
#[test]
fn a_buffer_handed_over_behind_a_send_waits_for_it_in_order() {
    let (mut backend, mut stream, mut peer) = served();
    let whole = |k: u8| -> VecDeque<u8> { std::iter::repeat_n(k, SEND_ROOM).collect() };
    let started = Instant::now();
    let mut taken = 0u8;
    // To a peer that reads nothing, until a send waits in the kernel.
    while !send_in_kernel(&backend, stream.fd()) {
        assert!(started.elapsed() < PATIENCE, "every send went at once");
        assert!(
            taken < 250,
            "{taken} buffers of 64 KiB sent to a peer that reads nothing"
        );
        let mut next = whole(taken);
        assert!(stream.write_whole(&mut next), "nothing was queued");
        taken += 1;
        backend.submit().unwrap();
        poll_for(&mut backend, Duration::from_millis(5));
    }
    let mut behind = whole(taken);
    assert!(stream.write_whole(&mut behind), "taken as the next send");
    assert!(behind.is_empty());
    taken += 1;
    assert!(send_in_kernel(&backend, stream.fd()));
    let mut refused = whole(taken);
    assert!(!stream.write_whole(&mut refused), "one is queued already");
    assert_eq!(refused.len(), SEND_ROOM, "untouched");
    let reader = std::thread::spawn(move || {
        let mut got = vec![0u8; usize::from(taken) * SEND_ROOM];
        peer.read_exact(&mut got).unwrap();
        got
    });
    while !reader.is_finished() {
        assert!(started.elapsed() < PATIENCE, "the peer never got it all");
        poll_for(&mut backend, Duration::from_millis(5));
    }
    let got = reader.join().unwrap();
    for (k, run) in got.chunks(SEND_ROOM).enumerate() {
        assert!(
            run.iter().all(|&b| usize::from(b) == k),
            "buffer {k} out of order"
        );
    }
}

/// A connection whose send failed refuses a whole buffer (its `write`
/// says why), as does an idle one offered more than `write` would take.
#[test]
fn a_failed_connection_or_too_large_a_buffer_is_refused_whole() {
    let (mut backend, mut stream, peer) = served();
    let mut too_large: VecDeque<u8> = std::iter::repeat_n(0, SEND_ROOM + 1).collect();
    assert!(!stream.write_whole(&mut too_large), "taken beyond the room");
    assert_eq!(too_large.len(), SEND_ROOM + 1);
    socket2::SockRef::from(&peer)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(peer);
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < PATIENCE, "no send failed");
        match stream.write(&[IoSlice::new(&[3u8; 16 * 1024])]) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
        poll_for(&mut backend, Duration::from_millis(5));
    }
    let mut chunk: VecDeque<u8> = std::iter::repeat_n(3, 16).collect();
    assert!(
        !stream.write_whole(&mut chunk),
        "a failed connection took bytes"
    );
    assert_eq!(chunk.len(), 16, "refused whole");
}
