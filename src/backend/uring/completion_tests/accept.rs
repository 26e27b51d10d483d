//! Accepting: connections the ring accepts, the bound on what it holds,
//! an accept that fails, and a listener deregistered or dropped.

use std::os::fd::AsRawFd;

use super::*;

const LISTENER: Token = Token(7);

/// A backend whose ring accepts on a fresh loopback listener (registered
/// under [`LISTENER`], with a backlog of 1,024), and the listener.
fn listening() -> (UringBackend, Streams, RingListener, TcpListener) {
    let (mut backend, streams) = UringBackend::with_streams(64).expect("io_uring here");
    let streams = streams.expect("provided buffers on this kernel");
    let listener =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let addr: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    listener.bind(&addr.into()).unwrap();
    listener.listen(1024).unwrap();
    listener.set_nonblocking(true).unwrap();
    let listener = TcpListener::from(listener);
    let ring = streams.listen(listener.as_raw_fd(), false);
    backend
        .add(listener.as_raw_fd(), LISTENER, Interest::READABLE)
        .unwrap();
    // Armed with the first wait, as in the loop.
    poll_for(&mut backend, Duration::ZERO);
    (backend, streams, ring, listener)
}

/// Polls until the listener is reported readable.
fn poll_until_listener_reported(backend: &mut UringBackend) {
    let started = Instant::now();
    while !poll_for(backend, Duration::from_millis(20))
        .iter()
        .any(|e| e.token == LISTENER && e.readable)
    {
        assert!(
            started.elapsed() < PATIENCE,
            "the listener was never reported"
        );
    }
}

/// Takes connections from the ring, polling meanwhile, until `count`.
fn take(backend: &mut UringBackend, ring: &RingListener, count: usize) -> Vec<RingStream> {
    let started = Instant::now();
    let mut taken = Vec::new();
    while taken.len() < count {
        assert!(
            started.elapsed() < PATIENCE,
            "{} of {count} accepted",
            taken.len()
        );
        match ring.next() {
            Next::Stream(stream) => taken.push(stream),
            Next::Nothing => drop(poll_for(backend, Duration::from_millis(10))),
            other => panic!("the ring's accept: {other:?}"),
        }
    }
    taken
}

fn queued(backend: &UringBackend) -> usize {
    let driver = backend.driver.driver();
    driver.accepts.queued()
}

/// Polls until the ring holds `count` accepted sockets.
fn poll_until_queued(backend: &mut UringBackend, count: usize) {
    let started = Instant::now();
    while queued(backend) < count {
        assert!(started.elapsed() < PATIENCE, "{count} never accepted");
        poll_for(backend, Duration::from_millis(5));
    }
}

/// Asserts that the server's end of `client`'s connection was closed: a
/// read gives the end of stream (or a reset), not the timeout.
fn assert_closed(client: &mut TcpStream, what: &str) {
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut byte = [0u8; 1];
    match client.read(&mut byte) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("{what} was left open: {other:?}"),
    }
}

fn is_waiting_in_the_backlog(listener: &TcpListener) -> bool {
    listener.set_nonblocking(true).unwrap();
    match listener.accept() {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(e) => panic!("accept: {e}"),
    }
}

#[test]
fn the_ring_accepts_connections_as_blocking_close_on_exec_sockets_it_serves() {
    let (mut backend, _streams, ring, listener) = listening();
    let addr = listener.local_addr().unwrap();
    let mut clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    poll_until_listener_reported(&mut backend);
    let mut accepted = take(&mut backend, &ring, 3);
    assert!(matches!(ring.next(), Next::Nothing));
    assert!(
        !is_waiting_in_the_backlog(&listener),
        "a connection was left to the plain accept"
    );
    // Nothing new: the listener is not reported, and a poll waits.
    let started = Instant::now();
    let events = poll_for(&mut backend, Duration::from_millis(100));
    assert!(
        !events.iter().any(|e| e.token == LISTENER),
        "an idle listener reported: {events:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(90),
        "a poll with nothing to report did not wait"
    );
    for (stream, client) in accepted.iter_mut().zip(&mut clients) {
        // SAFETY: fcntl on a descriptor the stream owns, integers only.
        let (flags, fd_flags) = unsafe {
            (
                libc::fcntl(stream.fd(), libc::F_GETFL),
                libc::fcntl(stream.fd(), libc::F_GETFD),
            )
        };
        assert_eq!(flags & libc::O_NONBLOCK, 0, "accepted non-blocking");
        assert_ne!(
            fd_flags & libc::FD_CLOEXEC,
            0,
            "accepted without close-on-exec"
        );
        // Served by the ring: what it writes reaches its client.
        assert_eq!(stream.write(&[IoSlice::new(b"hello")]).unwrap(), 5);
        backend.submit().unwrap();
        client.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut got = [0u8; 5];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
    }
}

#[test]
fn a_full_queue_cancels_the_accept_and_the_rest_wait_in_the_backlog_until_half_is_taken() {
    let (mut backend, _streams, ring, listener) = listening();
    backend.driver.driver().accepts.queued_most = 8;
    let addr = listener.local_addr().unwrap();
    let mut clients = Vec::new();
    // Up to the bound, each accepted before the next comes.
    for count in 1..=8 {
        clients.push(TcpStream::connect(addr).unwrap());
        poll_until_queued(&mut backend, count);
    }
    // The next poll cancels the accept; whoever comes after waits in
    // the backlog, however long the loop leaves the queue untouched.
    poll_for(&mut backend, Duration::ZERO);
    for _ in 8..20 {
        clients.push(TcpStream::connect(addr).unwrap());
        poll_for(&mut backend, Duration::from_millis(5));
    }
    poll_for(&mut backend, Duration::from_millis(50));
    assert_eq!(queued(&backend), 8, "the accept went on past the bound");
    assert!(is_waiting_in_the_backlog(&listener));
    // Taking half arms the accept again; the rest come from the backlog.
    let mut taken = take(&mut backend, &ring, 19);
    assert!(matches!(ring.next(), Next::Nothing));
    assert!(!is_waiting_in_the_backlog(&listener));
    taken.clear();
}

#[test]
fn a_deregistered_listener_is_left_to_the_backlog_until_registered_again() {
    let (mut backend, _streams, ring, listener) = listening();
    let fd = listener.as_raw_fd();
    backend.delete(fd).unwrap();
    let addr = listener.local_addr().unwrap();
    let _first = TcpStream::connect(addr).unwrap();
    poll_for(&mut backend, Duration::from_millis(50));
    assert!(matches!(ring.next(), Next::Nothing));
    assert_eq!(queued(&backend), 0, "accepted while deregistered");
    backend.add(fd, LISTENER, Interest::READABLE).unwrap();
    poll_until_listener_reported(&mut backend);
    take(&mut backend, &ring, 1);
}

#[test]
fn a_listener_registered_again_with_connections_held_is_reported_at_once() {
    let (mut backend, _streams, ring, listener) = listening();
    let fd = listener.as_raw_fd();
    let addr = listener.local_addr().unwrap();
    let _client = TcpStream::connect(addr).unwrap();
    poll_until_queued(&mut backend, 1);
    // Paused with a connection held, and twice over: each pause cancels
    // the accept armed last, the one before it long gone.
    for _ in 0..2 {
        backend.delete(fd).unwrap();
        // The cancellation's completion read, so that only the news
        // below can end the next poll early.
        poll_for(&mut backend, Duration::ZERO);
        backend.add(fd, LISTENER, Interest::READABLE).unwrap();
        // What it holds is news, as a socket registered while ready is
        // on epoll: the poll returns at once, whatever its timeout.
        let started = Instant::now();
        let events = poll_for(&mut backend, PATIENCE);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the poll waited"
        );
        assert!(events.iter().any(|e| e.token == LISTENER && e.readable));
    }
    backend.delete(fd).unwrap();
    let _paused = TcpStream::connect(addr).unwrap();
    poll_for(&mut backend, Duration::from_millis(50));
    assert_eq!(queued(&backend), 1, "accepted while paused");
    take(&mut backend, &ring, 1);
    assert!(is_waiting_in_the_backlog(&listener));
}

#[test]
fn a_listener_dropped_while_registered_frees_its_port() {
    let (mut backend, _streams, ring, listener) = listening();
    let addr = listener.local_addr().unwrap();
    poll_for(&mut backend, Duration::ZERO);
    // A reactor dropped whole drops its listeners without deregistering
    // them: the listener's own drop cancels its accept.
    drop(ring);
    drop(listener);
    let refused = TcpStream::connect(addr).expect_err("the port still accepts");
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn a_dropped_listener_closes_what_it_held_and_frees_its_port() {
    let (mut backend, _streams, ring, listener) = listening();
    let addr = listener.local_addr().unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    poll_until_queued(&mut backend, 1);
    // As the loop closes a listener: deregistered, then dropped.
    backend.delete(listener.as_raw_fd()).unwrap();
    drop(ring);
    drop(listener);
    assert_closed(&mut client, "the queued connection");
    let refused = TcpStream::connect(addr).expect_err("the port still accepts");
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn a_failed_accept_reaches_the_loop_and_the_listener_is_polled_until_a_descriptor_is_freed() {
    let (mut backend, _streams, ring, listener) = listening();
    let fd = listener.as_raw_fd();
    // A listening socket shut for reading stops listening: the armed
    // accept fails (EINVAL).
    // SAFETY: shutdown and listen on a descriptor the test owns.
    assert_eq!(unsafe { libc::shutdown(fd, libc::SHUT_RD) }, 0);
    poll_until_listener_reported(&mut backend);
    match ring.next() {
        Next::Failed(e) => assert_eq!(e.raw_os_error(), Some(libc::EINVAL)),
        other => panic!("the error never came: {other:?}"),
    }
    assert!(matches!(ring.next(), Next::AcceptYourself));
    // Listening again: a poll, not the ring, reports a newcomer, and
    // the loop's own accept takes it.
    assert_eq!(unsafe { libc::listen(fd, 1024) }, 0);
    let addr = listener.local_addr().unwrap();
    let _polled = TcpStream::connect(addr).unwrap();
    poll_until_listener_reported(&mut backend);
    assert!(matches!(ring.next(), Next::AcceptYourself));
    assert!(is_waiting_in_the_backlog(&listener));
    // A descriptor freed: the ring accepts again, and the poll goes.
    ring.descriptor_freed();
    poll_for(&mut backend, Duration::ZERO);
    let _accepted = TcpStream::connect(addr).unwrap();
    poll_until_listener_reported(&mut backend);
    take(&mut backend, &ring, 1);
    assert!(backend.watched.get(fd as usize).is_none_or(Option::is_none));
}

#[test]
fn a_connection_accepted_for_a_listener_since_replaced_is_not_the_new_ones() {
    let (mut backend, streams, ring, listener) = listening();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    // Accepted by the kernel, its completion not yet read, when the
    // listener goes and another takes its descriptor (here the same
    // socket, under a new registration, as a new socket would reuse the
    // number).
    std::thread::sleep(Duration::from_millis(20));
    drop(ring);
    let successor = streams.listen(listener.as_raw_fd(), false);
    poll_for(&mut backend, Duration::from_millis(20));
    assert_eq!(
        queued(&backend),
        0,
        "the old listener's connection was queued"
    );
    assert!(matches!(successor.next(), Next::Nothing));
    assert_closed(&mut client, "a connection nobody takes");
}

#[test]
fn a_connection_accepted_for_a_listener_already_gone_is_closed() {
    let (mut backend, _streams, ring, listener) = listening();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    // Accepted by the kernel, its completion not yet read, when the
    // listener goes.
    std::thread::sleep(Duration::from_millis(20));
    drop(ring);
    poll_for(&mut backend, Duration::from_millis(20));
    assert_closed(&mut client, "a connection nobody takes");
}
