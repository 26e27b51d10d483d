//! Sending: partial sends, room to write, failed sends, and the reports
//! they make.

use super::*;

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
