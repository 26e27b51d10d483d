use super::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Instant;

fn backend() -> UringBackend {
    UringBackend::new(64).expect("io_uring on this kernel")
}

/// A socket pair, and a backend watching the first socket under
/// `token` for `interest`, its poll armed.
fn watching(token: Token, interest: Interest) -> (UnixStream, UnixStream, UringBackend) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let mut backend = backend();
    backend.add(ours.as_raw_fd(), token, interest).unwrap();
    poll_now(&mut backend);
    (ours, theirs, backend)
}

fn poll_now(backend: &mut UringBackend) -> Vec<Readiness> {
    let mut events = Vec::new();
    backend
        .poll(&mut events, Some(Duration::from_millis(50)))
        .unwrap();
    events
}

#[test]
fn a_poll_reports_each_wake_up_once_and_stays_armed() {
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    let mut backend = backend();
    backend
        .add(ours.as_raw_fd(), Token(7), Interest::READABLE)
        .unwrap();
    assert!(backend.has_unsubmitted(), "queued until the next poll");
    assert!(poll_now(&mut backend).is_empty());
    assert!(!backend.has_unsubmitted());
    theirs.write_all(b"x").unwrap();
    let events = poll_now(&mut backend);
    assert_eq!(events, vec![Readiness::readable(Token(7))]);
    // Edge-like: unread data is not reported again...
    assert!(poll_now(&mut backend).is_empty());
    (&ours).read_exact(&mut [0u8; 1]).unwrap();
    // ...but the next arrival is, without arming anything again.
    theirs.write_all(b"yz").unwrap();
    assert_eq!(poll_now(&mut backend), vec![Readiness::readable(Token(7))]);
}

#[test]
fn a_peer_that_ends_its_output_is_reported_read_closed() {
    // A half-close is no hang-up (the peer may still read): only the
    // poll's POLLRDHUP says the input ended, so the loop reads on to it.
    // (io_uring reports POLLRDHUP whether or not the entry asked for it.)
    let (_ours, theirs, mut backend) = watching(Token(2), Interest::READABLE);
    theirs.shutdown(std::net::Shutdown::Write).unwrap();
    let events = poll_now(&mut backend);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].readable && events[0].read_closed, "{events:?}");
    assert!(!events[0].write_closed, "{events:?}");
}

#[test]
fn wake_ups_of_one_descriptor_in_one_batch_make_one_report() {
    let (_ours, mut theirs, mut backend) = watching(Token(1), Interest::READABLE);
    for _ in 0..3 {
        theirs.write_all(b"x").unwrap();
    }
    drop(theirs);
    let events = poll_now(&mut backend);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].readable && events[0].read_closed);
}

#[test]
fn a_changed_interest_reports_under_the_new_token_and_not_the_old_poll() {
    let (ours, theirs, mut backend) = watching(Token(1), Interest::READABLE);
    backend
        .modify(ours.as_raw_fd(), Token(2), Interest::WRITABLE)
        .unwrap();
    // Writable at once: the new poll looks when it is armed.
    let events = poll_now(&mut backend);
    assert_eq!(events, vec![Readiness::writable(Token(2))]);
    (&theirs).write_all(b"x").unwrap();
    assert!(
        poll_now(&mut backend).iter().all(|e| !e.readable),
        "the old poll was removed"
    );
}

#[test]
fn a_deleted_descriptor_is_not_reported() {
    let (ours, theirs, mut backend) = watching(Token(3), Interest::READABLE);
    backend.delete(ours.as_raw_fd()).unwrap();
    let again = backend.delete(ours.as_raw_fd());
    assert!(again.is_err(), "not watched any more");
    (&theirs).write_all(b"x").unwrap();
    assert!(poll_now(&mut backend).is_empty());
}

#[test]
fn a_deleted_socket_closes_when_it_is_closed_not_when_the_ring_next_enters() {
    let (ours, mut theirs, mut backend) = watching(Token(3), Interest::READABLE);
    backend.delete(ours.as_raw_fd()).unwrap();
    // No poll in between: the removal went to the kernel with the
    // delete, so the armed poll no longer holds the socket open.
    drop(ours);
    theirs
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(theirs.read(&mut [0u8; 1]).unwrap(), 0, "end of stream");
    drop(backend);
}

#[test]
fn a_full_batch_leaves_the_rest_for_the_next_poll() {
    let pairs: Vec<_> = (0..5).map(|_| UnixStream::pair().unwrap()).collect();
    let mut backend = UringBackend::new(2).unwrap();
    for (i, (ours, _)) in pairs.iter().enumerate() {
        backend
            .add(ours.as_raw_fd(), Token(i), Interest::READABLE)
            .unwrap();
    }
    poll_now(&mut backend);
    for (_, theirs) in &pairs {
        (&*theirs).write_all(b"x").unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        let events = poll_now(&mut backend);
        assert!(events.len() <= 2);
        seen.extend(events.iter().map(|e| e.token.0));
        // What a full batch left is news no completion will announce: a
        // loop driven from another's wait must run a turn for it.
        assert_eq!(backend.has_unsubmitted(), seen.len() < 5, "after {seen:?}");
    }
    seen.sort_unstable();
    assert_eq!(seen, vec![0, 1, 2, 3, 4]);
}

#[test]
fn it_is_named_and_its_ring_is_pollable() {
    let (_ours, mut theirs, mut backend) = watching(Token(1), Interest::READABLE);
    assert_eq!(backend.name(), "uring");
    let ring = backend.raw_fd().expect("the ring's descriptor");
    let readable = |fd| {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the length given.
        unsafe { libc::poll(&mut pfd, 1, 1000) == 1 }
    };
    theirs.write_all(b"x").unwrap();
    assert!(readable(ring), "a completion waits in the ring");
    poll_now(&mut backend);
}

#[test]
fn a_change_of_token_alone_arms_nothing() {
    let (ours, _theirs, mut backend) = watching(Token(1), Interest::READABLE);
    let fd = ours.as_raw_fd();
    backend.modify(fd, Token(2), Interest::WRITABLE).unwrap();
    assert!(backend.has_unsubmitted(), "a new poll for a new interest");
    assert_eq!(poll_now(&mut backend), vec![Readiness::writable(Token(2))]);
    backend.modify(fd, Token(3), Interest::WRITABLE).unwrap();
    assert!(!backend.has_unsubmitted(), "the armed poll still fits");
}

#[test]
fn a_poll_that_fails_reports_an_error_for_the_loop_to_meet() {
    // A descriptor number nothing has open: the highest one allowed.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit, which `limit` is.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    let unused = (limit.rlim_cur.min(65_536) - 1) as RawFd;
    let mut backend = backend();
    backend.add(unused, Token(9), Interest::READABLE).unwrap();
    let events = poll_now(&mut backend);
    assert_eq!(events.len(), 1, "{events:?}");
    let report = events[0];
    assert!(
        report.error && report.readable && report.writable,
        "{report:?}"
    );
    backend.delete(unused).unwrap();
}

#[test]
fn a_signal_during_the_wait_does_not_end_it() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    // A handler, so that the signal interrupts the system call rather
    // than being ignored; SIGURG, which nothing else here uses.
    let caught = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(libc::SIGURG, caught.clone()).unwrap();
    let mut backend = backend();
    // SAFETY: pthread_self names this thread, alive until the join.
    let waiting = unsafe { libc::pthread_self() };
    let signaller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        // SAFETY: the thread is alive: the wait below lasts 150 ms.
        unsafe { libc::pthread_kill(waiting, libc::SIGURG) };
    });
    let started = Instant::now();
    let mut events = Vec::new();
    backend
        .poll(&mut events, Some(Duration::from_millis(150)))
        .unwrap();
    signaller.join().unwrap();
    assert!(caught.load(Ordering::SeqCst), "the signal came");
    assert!(events.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(150), "waited on");
}

#[test]
fn a_wait_ends_at_its_timeout() {
    let mut backend = backend();
    let started = Instant::now();
    let mut events = Vec::new();
    backend
        .poll(&mut events, Some(Duration::from_millis(30)))
        .unwrap();
    assert!(events.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(30));
}
