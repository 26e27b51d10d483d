//! Closing: a write shutdown after the last send, a dropped connection's
//! entries cancelled, and the ring's own drop.

use super::*;

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
    // An armed receive holds the file.
    poll_for(&mut backend, Duration::ZERO);
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
        if slot.receive == slot::Receive::Idle {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the receive was never cancelled"
        );
    }
    // The peer reads nothing.
    fill_until_a_send_waits(&mut backend, &mut stream);
    drop(stream);
    {
        let driver = backend.driver.driver();
        assert_eq!(driver.table.limbo.len(), 1, "the send's buffer is kept");
        let (_, kept) = &driver.table.limbo[0];
        assert!(kept.send_in_kernel() && kept.receive == slot::Receive::Idle);
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
    fill_until_a_send_waits(&mut backend, &mut stream);
    // The receive and a send are in the kernel; under AddressSanitizer a
    // buffer freed while the kernel still held it would show here.
    drop(backend);
    drop(stream);
    drop(peer);
}

#[test]
fn everything_in_the_kernel_is_cancelled_and_waited_for_before_the_ring_goes() {
    // What the driver's drop does, with the connection still open: its
    // armed receive and the send the peer does not read are cancelled,
    // and their last completions reaped, at once.
    let (mut backend, mut stream, peer) = served();
    fill_until_a_send_waits(&mut backend, &mut stream);
    let mut driver = backend.driver.driver();
    let slot = driver.table.slot(stream.fd()).unwrap();
    assert!(slot.send_in_kernel() && slot.receive == slot::Receive::Armed);
    let started = Instant::now();
    assert!(
        driver.cancel_all_and_wait(PATIENCE),
        "entries still in the kernel"
    );
    assert!(
        started.elapsed() < PATIENCE / 2,
        "the wait went on after the last completion"
    );
    let slot = driver.table.slot(stream.fd()).unwrap();
    assert!(!slot.send_in_kernel() && slot.receive == slot::Receive::Idle);
    drop(driver);
    drop(peer);
}

#[test]
fn a_shutdown_both_ways_ends_reading_at_once_and_writing_after_the_last_byte() {
    // Bytes still to go: the write side waits for them, the read side
    // does not (our receive meets the end of input though the peer sent
    // none).
    let (mut backend, mut stream, mut peer) = served();
    fill_until_a_send_waits(&mut backend, &mut stream);
    assert!(stream.sending());
    stream.shutdown(Shutdown::Both).unwrap();
    poll_until(&mut backend, |e| e.readable && e.read_closed);
    assert_eq!(read_held(&mut stream), (Vec::new(), true));
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        peer.read_to_end(&mut got).map(|_| got.len())
    });
    let started = Instant::now();
    while stream.sending() {
        assert!(started.elapsed() < PATIENCE, "the last bytes never went");
        poll_for(&mut backend, Duration::from_millis(5));
    }
    assert!(
        reader.join().unwrap().unwrap() > 0,
        "the bytes before it came"
    );
    // Nothing to go: both sides end at once.
    let (_backend, stream, mut peer) = served();
    stream.shutdown(Shutdown::Both).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(peer.read(&mut buf).unwrap(), 0, "no FIN");
}
