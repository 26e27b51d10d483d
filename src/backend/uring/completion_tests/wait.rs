//! A loop that never waits (every poll with a timeout of zero, as a busy
//! loop's are) is served all the same: its polls submit what is queued
//! and reap what completed.

use super::*;

/// Polls with a timeout of zero until an event for `Token(5)` satisfies
/// `wanted`, with no other system call between them (a sleep would
/// submit nothing, but it would run the kernel's pending completion work
/// on its way out, whatever the poll did).
fn spin_until(backend: &mut UringBackend, wanted: impl Fn(&Readiness) -> bool) -> Readiness {
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < PATIENCE,
            "no such event came to polls that never wait"
        );
        let events = poll_for(backend, Duration::ZERO);
        if let Some(event) = events
            .into_iter()
            .find(|e| e.token == Token(5) && wanted(e))
        {
            return event;
        }
        std::hint::spin_loop();
    }
}

#[test]
fn polls_that_never_wait_still_submit_and_reap() {
    let (mut backend, mut stream, mut peer) = served();
    // The receive armed at registration goes in with a poll of zero.
    peer.write_all(b"ping").unwrap();
    spin_until(&mut backend, |e| e.readable);
    assert_eq!(read_held(&mut stream), (b"ping".to_vec(), false));
    // And so does a send: its entry is queued by the poll and submitted
    // by it, with nothing else to wait for.
    assert_eq!(stream.write(&[IoSlice::new(b"pong")]).unwrap(), 4);
    let sent = std::thread::spawn(move || {
        let mut reply = [0u8; 4];
        peer.read_exact(&mut reply).map(|()| reply)
    });
    let started = Instant::now();
    while !sent.is_finished() {
        assert!(started.elapsed() < PATIENCE, "the send never went");
        poll_for(&mut backend, Duration::ZERO);
        std::hint::spin_loop();
    }
    assert_eq!(&sent.join().unwrap().unwrap(), b"pong");
}
