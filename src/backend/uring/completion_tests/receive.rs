//! Receiving: bytes, the end of input and errors in order; the bound on
//! what a connection holds; a ring out of buffers.

use super::*;

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
    // Said by the next poll at once, though no completion will come for
    // them: a poll holding news does not wait.
    let started = Instant::now();
    let events = poll_for(&mut backend, PATIENCE);
    assert!(
        started.elapsed() < PATIENCE / 2,
        "the poll slept on the news it held"
    );
    let event = events
        .into_iter()
        .find(|e| e.token == Token(5) && e.readable)
        .expect("the held bytes reported");
    assert!(!event.read_closed);
    assert_eq!(read_held(&mut stream), (b"held".to_vec(), false));
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
    assert_eq!(receive(&backend), slot::Receive::Armed);
    backend
        .modify(stream.fd(), Token(5), Interest::WRITABLE)
        .unwrap();
    let started = Instant::now();
    while receive(&backend) != slot::Receive::Idle {
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

#[test]
fn a_connection_that_holds_too_much_stops_receiving_until_it_is_read() {
    let (mut backend, mut stream, mut peer) = served();
    const TOTAL: usize = 16 << 20;
    let writer = std::thread::spawn(move || {
        let data: Vec<u8> = (0..TOTAL).map(|i| (i % 241) as u8).collect();
        // Paced, so that the ring never runs out of buffers: the bound,
        // not a dry ring, is what stops the receive.
        for chunk in data.chunks(64 * 1024) {
            peer.write_all(chunk).unwrap();
            std::thread::sleep(Duration::from_micros(500));
        }
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

/// More connections receive at once than the ring has buffers: a
/// receive the kernel ends for want of one is not armed again into the
/// same want (no receive of a dry connection is in the kernel); the loop
/// reads that connection from its socket until it would block, and then
/// its receive is armed again. Every byte arrives, in order.
#[test]
fn connections_the_ring_has_no_buffer_for_are_read_from_their_sockets() {
    const PEERS: usize = 8;
    const SENT: usize = 30 * 1024;
    let (mut backend, served) = served_many(64, 2, 0..PEERS, Interest::READABLE);
    let (mut ours, mut peers): (Vec<_>, Vec<_>) = served.into_iter().unzip();
    poll_for(&mut backend, Duration::from_millis(10)); // the receives armed
    let send_all = |peers: &mut Vec<TcpStream>, round: u8| {
        for (i, peer) in peers.iter_mut().enumerate() {
            peer.write_all(&vec![i as u8 + round; SENT]).unwrap();
        }
        // On loopback the bytes are in the sockets when write returns.
        std::thread::sleep(Duration::from_millis(50));
    };
    // `size`: the loop's read size. Round one reads 3,000 bytes at a
    // time (held bytes run out mid-read, and a read comes back short);
    // round two 1,024 (every read full, until one would block).
    let read_all = |backend: &mut UringBackend, ours: &mut Vec<RingStream>, size: usize| {
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
                            slot::Receive::Idle,
                            "a dry connection's receive is in the kernel"
                        );
                    }
                }
                // A read of nothing is not the end of input.
                assert_eq!(stream.read(&mut []).unwrap(), 0);
                got[i].extend(read_as_the_loop_does(stream, size));
            }
        }
        (got, dry)
    };
    let ran_dry = |backend: &UringBackend| backend.driver.driver().table.ran_dry;
    send_all(&mut peers, 0);
    let (got, dry) = read_all(&mut backend, &mut ours, 3000);
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
    let armed_again = |backend: &mut UringBackend, ours: &[RingStream]| {
        poll_for(backend, Duration::from_millis(10));
        for stream in ours {
            let mut driver = backend.driver.driver();
            let slot = driver.table.slot(stream.fd()).unwrap();
            assert!(
                !slot.dry && slot.error().is_none() && slot.receive == slot::Receive::Armed,
                "{slot:?}"
            );
        }
    };
    armed_again(&mut backend, &ours);
    send_all(&mut peers, 100);
    let (got, dry) = read_all(&mut backend, &mut ours, 1024);
    for (i, bytes) in got.iter().enumerate() {
        assert!(
            bytes.iter().all(|&b| b == i as u8 + 100),
            "connection {i}'s second bytes"
        );
    }
    assert!(dry > 0, "the second round did not run dry");
    armed_again(&mut backend, &ours);
}

/// A receive armed while the ring has no buffer left waits for bytes
/// before it takes one (`POLL_FIRST`): a connection with nothing to read
/// is not run dry by another that holds every buffer, and its bytes come
/// through the ring once buffers are back.
#[test]
fn a_receive_waits_for_bytes_before_it_takes_buffers() {
    let (mut backend, mut served) = served_many(64, 2, 5..7, Interest::READABLE);
    let (mut quiet, mut quiet_peer) = served.pop().unwrap();
    let (mut hog, mut hog_peer) = served.pop().unwrap();
    // Only the hog's receive is armed: it takes both buffers.
    backend
        .modify(quiet.fd(), Token(6), Interest::WRITABLE)
        .unwrap();
    poll_for(&mut backend, Duration::ZERO);
    send_and_hold(&mut backend, &hog, &mut hog_peer, &[1u8; 8192]);
    let started = Instant::now();
    // The quiet connection's receive goes in while the ring is empty (no
    // poll, which would copy the hog's buffers out first).
    backend
        .modify(quiet.fd(), Token(6), Interest::READABLE)
        .unwrap();
    {
        let mut driver = backend.driver.driver();
        driver.push_entries().unwrap();
        driver.ring.submit().unwrap();
    }
    std::thread::sleep(Duration::from_millis(20));
    backend.reap().unwrap();
    let ran_dry = backend.driver.driver().table.ran_dry;
    assert_eq!(
        ran_dry, 0,
        "a receive with nothing to read ended for want of buffers"
    );
    assert_eq!(read_held(&mut hog).0.len(), 8192);
    quiet_peer.write_all(b"now").unwrap();
    let event = loop {
        let events = poll_for(&mut backend, Duration::from_millis(50));
        if let Some(event) = events.into_iter().find(|e| e.token == Token(6)) {
            break event;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the quiet connection's bytes never came"
        );
    };
    assert!(event.readable);
    assert_eq!(read_held(&mut quiet), (b"now".to_vec(), false));
}
