//! Receive buffers lent to connections: bytes read from where the kernel
//! put them, the buffers given back as they are read, copied out before
//! the next wait when left unread, given back when the connection goes.

use super::*;

/// (lent buffers, bytes copied into `received` and unread) of a stream.
fn lent_and_copied(backend: &UringBackend, stream: &RingStream) -> (usize, usize) {
    let mut driver = backend.driver.driver();
    let slot = driver.table.slot(stream.fd()).expect("served");
    slot.io
        .as_ref()
        .map_or((0, 0), |io| (io.lent.len(), io.received.len() - io.read_at))
}

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| ((i + seed) % 251) as u8).collect()
}

#[test]
fn bytes_are_read_from_the_buffer_the_kernel_filled() {
    let (mut backend, mut stream, mut peer) = served();
    poll_for(&mut backend, Duration::ZERO); // the receive is armed
    send_and_hold(&mut backend, &stream, &mut peer, b"hello");
    assert_eq!(
        lent_and_copied(&backend, &stream),
        (1, 0),
        "copied, not lent"
    );
    assert_eq!(read_held(&mut stream), (b"hello".to_vec(), false));
    assert_eq!(lent_and_copied(&backend, &stream), (0, 0));
    assert_eq!(backend.driver.driver().table.bundled, 0, "one buffer");
}

/// Sixteen buffers are lent at most; the bytes after them are copied,
/// and bytes that come while some are still copied are copied too, behind
/// them, though buffers were read and given back: reads give them all in
/// the order they came.
#[test]
fn bytes_beyond_the_buffers_lent_are_copied_and_read_in_order() {
    let (mut backend, mut stream, mut peer) = served();
    poll_for(&mut backend, Duration::ZERO);
    // First a burst read whole: the large buffer it was copied into goes
    // to the table's spares, for the next connection that starts one.
    let burst = pattern(100 * 1024, 9);
    send_and_hold(&mut backend, &stream, &mut peer, &burst);
    assert!(read_as_the_loop_does(&mut stream, 1 << 20) == burst);
    assert!(!backend.driver.driver().table.spares.is_empty());
    let data = pattern(200 * 1024, 0);
    let (first, second) = data.split_at(100 * 1024);
    send_and_hold(&mut backend, &stream, &mut peer, first);
    let (lent, copied) = lent_and_copied(&backend, &stream);
    assert_eq!(lent, 16, "{lent} lent");
    assert!(copied > 0);
    // Five buffers' worth read, in a piece that ends inside a buffer.
    let mut got = vec![0u8; 5 * 4096 + 100];
    assert_eq!(stream.read(&mut got).unwrap(), got.len());
    send_and_hold(&mut backend, &stream, &mut peer, second);
    got.extend(read_as_the_loop_does(&mut stream, 1000 * 7));
    got.extend(read_held(&mut stream).0);
    assert!(got == data, "bytes out of order ({} read)", got.len());
    assert_eq!(lent_and_copied(&backend, &stream), (0, 0));
}

/// A ring of four buffers serves twenty rounds of 16 KiB without running
/// dry: each buffer goes back as its bytes are read.
#[test]
fn lent_buffers_go_back_as_they_are_read() {
    let (mut backend, mut served) = served_many(64, 4, 5..6, Interest::READABLE);
    let (mut stream, mut peer) = served.pop().unwrap();
    poll_for(&mut backend, Duration::ZERO);
    for round in 0..20 {
        let data = pattern(16 * 1024, round);
        peer.write_all(&data).unwrap();
        let mut got = Vec::new();
        let started = Instant::now();
        while got.len() < data.len() {
            assert!(
                started.elapsed() < PATIENCE,
                "round {round}: {} read",
                got.len()
            );
            poll_for(&mut backend, Duration::from_millis(5));
            got.extend(read_held(&mut stream).0);
        }
        assert!(got == data, "round {round}'s bytes");
    }
    let ran_dry = backend.driver.driver().table.ran_dry;
    assert_eq!(ran_dry, 0, "a receive ran out of buffers");
}

/// Bytes the loop leaves unread for a turn are copied out of their
/// buffers before the ring waits again, so the buffers serve others.
#[test]
fn buffers_left_unread_are_copied_out_before_the_next_wait() {
    let (mut backend, mut stream, mut peer) = served();
    poll_for(&mut backend, Duration::ZERO);
    let data = pattern(8 * 1024, 3);
    send_and_hold(&mut backend, &stream, &mut peer, &data);
    assert_eq!(lent_and_copied(&backend, &stream).0, 2);
    poll_for(&mut backend, Duration::ZERO);
    assert_eq!(lent_and_copied(&backend, &stream), (0, data.len()));
    assert_eq!(read_held(&mut stream), (data, false));
}

/// A connection dropped with buffers lent gives them back: another on the
/// same ring of four receives 16 KiB without running dry.
#[test]
fn a_dropped_connection_gives_back_the_buffers_lent_to_it() {
    let (mut backend, mut served) = served_many(64, 4, 5..7, Interest::READABLE);
    let (mut second, mut second_peer) = served.pop().unwrap();
    let (first, mut first_peer) = served.pop().unwrap();
    poll_for(&mut backend, Duration::ZERO);
    send_and_hold(
        &mut backend,
        &first,
        &mut first_peer,
        &pattern(16 * 1024, 0),
    );
    assert_eq!(lent_and_copied(&backend, &first).0, 4);
    drop(first);
    let data = pattern(16 * 1024, 9);
    second_peer.write_all(&data).unwrap();
    let mut got = Vec::new();
    let started = Instant::now();
    while got.len() < data.len() {
        assert!(started.elapsed() < PATIENCE, "{} read", got.len());
        poll_for(&mut backend, Duration::from_millis(5));
        got.extend(read_held(&mut second).0);
    }
    assert!(got == data);
    let ran_dry = backend.driver.driver().table.ran_dry;
    assert_eq!(
        ran_dry, 0,
        "the first connection's buffers were not given back"
    );
}

/// Where the kernel can, bytes waiting when a receive starts are taken in
/// one completion of several buffers, lent in the order they were filled.
#[test]
fn bytes_waiting_are_taken_in_one_bundle_of_buffers() {
    let (mut backend, mut served) = served_many(64, 8, 5..6, Interest::WRITABLE);
    let (mut stream, mut peer) = served.pop().unwrap();
    if !backend.driver.driver().table.bundles {
        eprintln!("this kernel has no bundles (6.10): nothing to check");
        return;
    }
    let data = pattern(16 * 1024, 5);
    peer.write_all(&data).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    backend
        .modify(stream.fd(), Token(5), Interest::READABLE)
        .unwrap();
    poll_for(&mut backend, Duration::ZERO); // the receive is armed
    reap_until_held(&mut backend, &stream, data.len());
    assert_eq!(backend.driver.driver().table.bundled, 1, "not one bundle");
    assert_eq!(lent_and_copied(&backend, &stream), (4, 0));
    assert_eq!(read_held(&mut stream), (data, false));
}

/// A ring of 512 starts with 64 buffers in circulation; each receive that
/// runs dry doubles them, and once the need has passed (here after 256
/// buffers given back with none dry) the set halves, and halves again, as
/// buffers come back. Every byte arrives, in order, throughout.
#[test]
fn buffers_go_into_circulation_as_receives_run_dry_and_back_out_after() {
    const PEERS: usize = 9;
    let (mut backend, served) = served_many(64, 512, 0..PEERS, Interest::READABLE);
    let (mut ours, mut peers): (Vec<_>, Vec<_>) = served.into_iter().unzip();
    let circulation = |backend: &UringBackend| {
        let driver = backend.driver.driver();
        driver.buffers.as_ref().unwrap().circulation()
    };
    assert_eq!(circulation(&backend), (64, 64));
    // The receives armed.
    poll_for(&mut backend, Duration::ZERO);
    // Nine connections are lent sixteen buffers each, unread (reaped
    // without a poll, which would copy them out): the fifth runs dry,
    // and with 128 in circulation the ninth (or more at once).
    let sent: Vec<Vec<u8>> = (0..PEERS).map(|i| pattern(16 * 4096, i)).collect();
    for (peer, data) in peers.iter_mut().zip(&sent) {
        peer.write_all(data).unwrap();
    }
    let started = Instant::now();
    while circulation(&backend).1 < 256 {
        assert!(
            started.elapsed() < PATIENCE,
            "{:?} in circulation",
            circulation(&backend)
        );
        reap_without_polling(&mut backend);
    }
    assert!(backend.driver.driver().table.ran_dry >= 2);
    for (i, stream) in ours.iter_mut().enumerate() {
        let mut got = Vec::new();
        while got.len() < sent[i].len() {
            assert!(started.elapsed() < PATIENCE, "{i}: {} read", got.len());
            poll_for(&mut backend, Duration::from_millis(5));
            got.extend(read_as_the_loop_does(stream, 64 * 1024));
        }
        assert!(got == sent[i], "connection {i}'s bytes");
    }
    let (now, wanted) = circulation(&backend);
    assert_eq!(now, wanted, "the held-back buffers went in");
    // The need passes: small messages, read as they come, a buffer each.
    backend
        .driver
        .driver()
        .buffers
        .as_mut()
        .unwrap()
        .shrink_after = 256;
    let mut seen = Vec::new();
    for round in 0..1000 {
        peers[0].write_all(&[round as u8; 100]).unwrap();
        let mut got = Vec::new();
        while got.len() < 100 {
            assert!(started.elapsed() < PATIENCE, "round {round}");
            poll_for(&mut backend, Duration::from_millis(5));
            got.extend(read_held(&mut ours[0]).0);
        }
        assert!(got.iter().all(|&b| b == round as u8));
        let wanted = circulation(&backend).1;
        if seen.last() != Some(&wanted) {
            seen.push(wanted);
        }
    }
    // Halved in turn, not dropped to the least at once.
    assert!(seen.len() >= 3 && seen.last() == Some(&64), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[1] == w[0] / 2), "{seen:?}");
    assert_eq!(circulation(&backend), (64, 64));
}

/// A reader that always lags (it reads less each turn than has come):
/// the bytes copied behind the lent buffers are compacted as they are
/// read, so what the connection keeps stays near what it holds unread
/// (8 MiB went through; a copy that was never compacted kept 12 MiB),
/// and every byte arrives in order.
#[test]
fn a_lagging_reader_keeps_no_more_than_it_holds() {
    let (mut backend, mut stream, mut peer) = served();
    const TOTAL: usize = 8 << 20;
    let data = pattern(TOTAL, 7);
    let writer = std::thread::spawn(move || {
        peer.write_all(&data).unwrap();
        data
    });
    let mut got = Vec::with_capacity(TOTAL);
    let mut kept_most = 0;
    let mut buf = vec![0u8; 60_000];
    let started = Instant::now();
    while got.len() < TOTAL {
        assert!(started.elapsed() < PATIENCE, "{} read", got.len());
        poll_for(&mut backend, Duration::from_millis(5));
        match stream.read(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        let mut driver = backend.driver.driver();
        let slot = driver.table.slot(stream.fd()).unwrap();
        let kept = slot.io.as_ref().map_or(0, |io| io.received.capacity());
        kept_most = kept_most.max(kept);
    }
    assert!(got == writer.join().unwrap(), "bytes out of order");
    // At most HOLD unread and what the last bundle brought beyond it, in
    // a vector grown by doubling.
    assert!(kept_most <= 4 * HOLD, "kept {kept_most} bytes");
}
