//! Outbound connections, Unix sockets, the embedder's own sources, and the
//! reactor nested in a foreign loop.

use crate::util;

use util::BackendKind;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
#[cfg(unix)]
use std::os::unix::io::AsRawFd;
#[cfg(unix)]
use std::os::unix::net::UnixStream as StdUnixStream;
use std::time::{Duration, Instant};

use selectloop::codec::Lines;
use selectloop::{CloseReason, Config, ConnId, Context, Handler, Interest, Origin, Reactor};
use util::PATIENCE;

/// Records connects and closes of outbound connections; echoes lines.
#[derive(Default)]
struct Dialer {
    connected: Vec<(ConnId, Option<Origin>)>,
    closed: Vec<(ConnId, String, Option<io::ErrorKind>)>,
    lines: Vec<Vec<u8>>,
}

impl Handler for Dialer {
    fn on_connect(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        self.connected.push((conn, cx.origin(conn)));
    }
    fn on_message(&mut self, _cx: &mut Context<'_>, _conn: ConnId, msg: &[u8]) {
        self.lines.push(msg.to_vec());
    }
    fn on_close(&mut self, _cx: &mut Context<'_>, conn: ConnId, reason: &CloseReason) {
        let kind = match reason {
            CloseReason::ConnectFailed(e) => Some(e.kind()),
            _ => None,
        };
        self.closed.push((conn, reason.to_string(), kind));
    }
}

fn turn_until(reactor: &mut Reactor, handler: &mut Dialer, done: impl Fn(&Dialer) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done(handler) {
        assert!(Instant::now() < deadline, "condition not reached");
        reactor
            .run_once(handler, Some(Duration::from_millis(10)))
            .unwrap();
    }
}

fn outbound_connect_succeeds_and_is_told_apart_from_accepted_ones(backend: BackendKind) {
    util::init_logger();
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut reactor =
        Reactor::with_config(Config::new().backend(backend).codec(Lines::new(64))).unwrap();
    let mut handler = Dialer::default();
    let conn = reactor.connect(upstream.local_addr().unwrap()).unwrap();
    // Queued before the connect completes: sent once it does.
    reactor.context().send(conn, b"early\n").unwrap();
    let (mut peer, _) = upstream.accept().unwrap();
    turn_until(&mut reactor, &mut handler, |h| !h.connected.is_empty());
    assert_eq!(handler.connected, [(conn, Some(Origin::Outbound))]);
    peer.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut early = [0u8; 6];
    peer.read_exact(&mut early).unwrap();
    assert_eq!(&early, b"early\n");
    peer.write_all(b"from upstream\n").unwrap();
    turn_until(&mut reactor, &mut handler, |h| !h.lines.is_empty());
    assert_eq!(handler.lines, [b"from upstream".to_vec()]);
    assert_eq!(reactor.stats().connects, 1);
}
per_backend!(outbound_connect_succeeds_and_is_told_apart_from_accepted_ones);

/// `Context::close` on a connection still connecting, with output queued,
/// used to return `true` and do nothing: the connection stayed open forever.
fn close_while_connecting_writes_what_was_queued_then_closes(backend: BackendKind) {
    util::init_logger();
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut reactor =
        Reactor::with_config(Config::new().backend(backend).codec(Lines::new(64))).unwrap();
    let mut handler = Dialer::default();
    let conn = reactor.connect(upstream.local_addr().unwrap()).unwrap();
    let mut cx = reactor.context();
    cx.send(conn, b"last words\n").unwrap();
    assert!(cx.close(conn), "a connecting connection can be closed");
    assert!(
        cx.send(conn, b"too late\n").is_err(),
        "closing: no more output"
    );
    // The peer reads what it is sent, then leaves (which ends the loop's
    // lingering close at once, as a real peer's leaving would).
    let peer = std::thread::spawn(move || {
        let (mut peer, _) = upstream.accept().unwrap();
        peer.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        got
    });
    turn_until(&mut reactor, &mut handler, |h| !h.closed.is_empty());
    assert_eq!(handler.closed[0].0, conn);
    assert_eq!(
        handler.closed[0].1,
        CloseReason::ClosedByHandler.to_string()
    );
    assert!(
        handler.connected.is_empty(),
        "closed before it opened for the handler"
    );
    assert_eq!(peer.join().unwrap(), b"last words\n");
    assert_eq!(reactor.connection_count(), 0);
}
per_backend!(close_while_connecting_writes_what_was_queued_then_closes);

/// `Instant + Duration` panicked with very large settings; they saturate
/// to "never" now.
fn huge_connect_timeout_and_shutdown_grace_do_not_panic(backend: BackendKind) {
    util::init_logger();
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = Config::new()
        .backend(backend)
        .codec(Lines::new(64))
        .connect_timeout(Duration::MAX)
        .accept_backoff(Duration::MAX);
    let mut reactor = Reactor::with_config(config).unwrap();
    let mut handler = Dialer::default();
    let conn = reactor.connect(upstream.local_addr().unwrap()).unwrap();
    turn_until(&mut reactor, &mut handler, |h| !h.connected.is_empty());
    reactor.context().set_periodic(Duration::MAX);
    reactor.context().set_timer(Duration::MAX);
    // The peer closes: the shutdown ends as soon as the connection drains,
    // whatever its grace.
    let (peer, _) = upstream.accept().unwrap();
    drop(peer);
    reactor.shutdown(&mut handler, Duration::MAX).unwrap();
    assert_eq!(handler.closed[0].0, conn);
}
per_backend!(huge_connect_timeout_and_shutdown_grace_do_not_panic);

fn outbound_connect_to_a_closed_port_is_refused(backend: BackendKind) {
    util::init_logger();
    let addr: SocketAddr = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    }; // nobody listens there any more
    let mut reactor = Reactor::with_config(Config::new().backend(backend)).unwrap();
    let mut handler = Dialer::default();
    let conn = match reactor.connect(addr) {
        Ok(conn) => conn,
        // Some kernels refuse a loopback connect on the spot.
        Err(e) => {
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
            return;
        }
    };
    turn_until(&mut reactor, &mut handler, |h| !h.closed.is_empty());
    assert_eq!(handler.closed[0].0, conn);
    assert_eq!(handler.closed[0].2, Some(io::ErrorKind::ConnectionRefused));
    assert!(handler.connected.is_empty());
    assert_eq!(reactor.stats().connect_failures, 1);
}
per_backend!(outbound_connect_to_a_closed_port_is_refused);

#[cfg(unix)]
fn outbound_connect_times_out_against_a_listener_that_never_accepts(backend: BackendKind) {
    util::init_logger();
    // A loopback listener with the smallest backlog, filled and never
    // accepted: further handshakes are not completed.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        let filler =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        filler.set_nonblocking(true).unwrap();
        let _ = filler.connect(&addr.into());
        fillers.push(filler);
    }
    // The first filler's handshake completes (it takes the one backlog
    // place): wait until it is connected, then the queue is full.
    let mut first = libc::pollfd {
        fd: fillers[0].as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one pollfd, valid for the call.
    let ready = unsafe { libc::poll(&mut first, 1, PATIENCE.as_millis() as i32) };
    assert_eq!(ready, 1, "the first filler never connected");
    let timeout = Duration::from_millis(300);
    let mut reactor =
        Reactor::with_config(Config::new().backend(backend).connect_timeout(timeout)).unwrap();
    let mut handler = Dialer::default();
    let started = Instant::now();
    let conn = reactor.connect(addr).unwrap();
    turn_until(&mut reactor, &mut handler, |h| !h.closed.is_empty());
    let took = started.elapsed();
    assert_eq!(handler.closed[0].0, conn);
    assert_eq!(
        handler.closed[0].2,
        Some(io::ErrorKind::TimedOut),
        "{:?}",
        handler.closed
    );
    assert!(took >= timeout, "timed out after {took:?}");
    drop(socket);
}
#[cfg(unix)]
per_backend!(outbound_connect_times_out_against_a_listener_that_never_accepts);

#[cfg(unix)]
fn unix_socket_echo_and_the_path_is_removed_at_shutdown(backend: BackendKind) {
    util::init_logger();
    // Its cases run in parallel, one per backend: a directory each.
    let dir = std::env::temp_dir().join(format!(
        "selectloop-test-{}-{}",
        std::process::id(),
        backend.name()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("echo.sock");
    let mut reactor =
        Reactor::with_config(Config::new().backend(backend).codec(Lines::new(64))).unwrap();
    let listener = reactor.listen_unix(&path).unwrap();
    assert_eq!(reactor.local_path(listener), Some(path.as_path()));
    assert!(path.exists());
    let mut client = StdUnixStream::connect(&path).unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    client.write_all(b"over a path\n").unwrap();
    let mut echo = |cx: &mut Context<'_>, conn: ConnId, msg: &[u8]| {
        cx.send_frame(conn, msg).unwrap();
    };
    let mut got = [0u8; 12];
    let deadline = Instant::now() + PATIENCE;
    client.set_nonblocking(true).unwrap();
    let mut read = 0;
    while read < got.len() {
        assert!(Instant::now() < deadline);
        reactor
            .run_once(&mut echo, Some(Duration::from_millis(10)))
            .unwrap();
        if let Ok(n) = client.read(&mut got[read..]) {
            read += n;
        }
    }
    assert_eq!(&got, b"over a path\n");
    // A Unix connection has no IP peer address.
    reactor.shutdown(&mut echo, Duration::from_secs(1)).unwrap();
    assert!(!path.exists(), "the socket file was left behind");
    let _ = std::fs::remove_dir(&dir);
}
#[cfg(unix)]
per_backend!(unix_socket_echo_and_the_path_is_removed_at_shutdown);

#[cfg(unix)]
/// An outer mio loop drives the reactor as libuv's embedders do: it waits
/// on the reactor's descriptor for at most `next_turn_in`, then runs a
/// turn. A batch of one event and a read budget of 64 bytes leave work and
/// unread events after most turns, which the descriptor alone (registered
/// edge-triggered, as mio does) would not announce again.
fn reactor_driven_from_a_foreign_mio_loop_through_its_descriptor(backend: BackendKind) {
    util::init_logger();
    let config = Config::new()
        .backend(backend)
        .codec(Lines::new(64))
        .events_capacity(1)
        .read_budget(64);
    let mut reactor = Reactor::with_config(config).unwrap();
    let listener = reactor.listen("127.0.0.1:0").unwrap();
    let addr = reactor.local_addr(listener).unwrap();
    let fd = reactor.as_raw_fd();
    if matches!(backend, BackendKind::Poll | BackendKind::Select) {
        // poll(2) and select(2) keep their interest in user space: there
        // is no descriptor that stands for "any of mine is ready", as
        // libuv's uv_backend_fd answers -1 on such platforms.
        assert_eq!(fd, -1, "{backend:?} has no pollable descriptor");
        return;
    }
    assert!(fd >= 0);
    let mut outer = mio::Poll::new().unwrap();
    outer
        .registry()
        .register(
            &mut mio::unix::SourceFd(&fd),
            mio::Token(7),
            mio::Interest::READABLE,
        )
        .unwrap();
    let mut events = mio::Events::with_capacity(8);
    let lines: Vec<u8> = (0..20)
        .flat_map(|i| format!("nested {i:02}\n").into_bytes())
        .collect();
    let mut clients: Vec<_> = (0..3).map(|_| util::connect(addr)).collect();
    for client in &mut clients {
        client.write_all(&lines).unwrap();
    }
    let mut echo = |cx: &mut Context<'_>, conn: ConnId, msg: &[u8]| {
        cx.send_frame(conn, msg).unwrap();
    };
    let deadline = Instant::now() + PATIENCE;
    while reactor.stats().messages < 60 {
        assert!(
            Instant::now() < deadline,
            "the outer loop slept with work left: {} of 60 messages",
            reactor.stats().messages
        );
        let wait = reactor.next_turn_in().map_or(PATIENCE, |t| t.min(PATIENCE));
        outer.poll(&mut events, Some(wait)).unwrap();
        for event in &events {
            assert_eq!(event.token(), mio::Token(7));
        }
        reactor.run_once(&mut echo, Some(Duration::ZERO)).unwrap();
    }
    for client in &mut clients {
        assert_eq!(util::read_n(client, lines.len()), lines);
    }
}
#[cfg(unix)]
per_backend!(reactor_driven_from_a_foreign_mio_loop_through_its_descriptor);

fn a_registered_udp_socket_gets_its_datagrams_through_its_callback(backend: BackendKind) {
    util::init_logger();
    let mut reactor = Reactor::with_config(Config::new().backend(backend)).unwrap();
    let socket = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let received = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = received.clone();
    let source = reactor
        .register_source_with(socket, Interest::READABLE, move |socket, _cx, _event| {
            let mut buf = [0u8; 64];
            while let Ok((n, _)) = socket.recv_from(&mut buf) {
                sink.borrow_mut().push(buf[..n].to_vec());
            }
        })
        .unwrap();
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..5u8 {
        sender.send_to(&[b'd', b'0' + i], addr).unwrap();
    }
    let mut nothing = |_: &mut Context<'_>, _: ConnId, _: &[u8]| {};
    let deadline = Instant::now() + PATIENCE;
    while received.borrow().len() < 5 {
        assert!(Instant::now() < deadline);
        reactor
            .run_once(&mut nothing, Some(Duration::from_millis(10)))
            .unwrap();
    }
    assert_eq!(received.borrow()[4], b"d4");
    reactor.deregister_source(source).unwrap();
    assert!(reactor.deregister_source(source).is_err());
}
per_backend!(a_registered_udp_socket_gets_its_datagrams_through_its_callback);

#[cfg(unix)]
/// A source's callback that reads a kilobyte a turn and asks to be served
/// again drains what arrived in one burst, though the burst makes one
/// edge; a stream client is answered in the turns between.
fn a_source_served_again_drains_a_burst_a_kilobyte_a_turn(backend: BackendKind) {
    use std::cell::Cell;
    use std::rc::Rc;
    let mut reactor = Reactor::with_config(Config::new().backend(backend)).unwrap();
    let listener = reactor.listen("127.0.0.1:0").unwrap();
    let addr = reactor.local_addr(listener).unwrap();
    let (ours, mut theirs) = mio::net::UnixStream::pair().unwrap();
    let read = Rc::new(Cell::new(0usize));
    let counted = read.clone();
    reactor
        .register_source_with(ours, Interest::READABLE, move |pipe, cx, _event| {
            let mut kilobyte = [0u8; 1024];
            if let Ok(n) = pipe.read(&mut kilobyte) {
                counted.set(counted.get() + n);
                if n == kilobyte.len() {
                    let me = cx.current_source().expect("inside its callback");
                    // Listed once, however often asked (a level-triggered
                    // backend may report it ready in the same turn too).
                    cx.serve_again(me);
                    assert!(!cx.serve_again(me), "listed once");
                }
            }
        })
        .unwrap();
    assert_eq!(reactor.context().current_source(), None);
    theirs.write_all(&[7u8; 64 * 1024]).unwrap();
    let mut client = util::connect(addr);
    client.write_all(b"ping\n").unwrap();
    let mut echo = |cx: &mut Context<'_>, conn: ConnId, msg: &[u8]| {
        let _ = cx.send_parts(conn, &[msg, b"\n"]);
    };
    let mut turns = 0;
    while read.get() < 64 * 1024 {
        turns += 1;
        assert!(turns < 2_000, "read {} of 65536 bytes", read.get());
        reactor
            .run_once(&mut echo, Some(Duration::from_millis(5)))
            .unwrap();
    }
    let mut answer = [0u8; 5];
    client.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"ping\n");
    // A kilobyte a call, at most two calls a turn (the ready list, and the
    // event of a level-triggered backend).
    assert!(turns >= 32, "a kilobyte a call: {turns} turns");
}
#[cfg(unix)]
per_backend!(a_source_served_again_drains_a_burst_a_kilobyte_a_turn);

/// Counts what a UDP socket's datagrams add up to, and tells TCP clients
/// the total: the socket's callback and the connections share the handler.
#[derive(Default)]
struct Tally {
    total: u64,
    /// Set by a datagram "stop": the callback deregisters its own source.
    stopped: bool,
}

impl Handler for Tally {
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, _msg: &[u8]) {
        let _ = cx.send(conn, format!("{}\n", self.total).as_bytes());
    }
}

fn a_source_callback_is_lent_the_handler(backend: BackendKind) {
    util::init_logger();
    let config = Config::new().backend(backend).codec(Lines::new(64));
    let mut reactor = Reactor::with_config(config).unwrap();
    let listener = reactor.listen("127.0.0.1:0").unwrap();
    let addr = reactor.local_addr(listener).unwrap();
    let socket = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let udp_addr = socket.local_addr().unwrap();
    reactor
        .register_source_with_handler(
            socket,
            Interest::READABLE,
            |tally: &mut Tally, socket, cx, _event| {
                let mut buf = [0u8; 64];
                while let Ok(n) = socket.recv(&mut buf) {
                    match std::str::from_utf8(&buf[..n]).unwrap() {
                        "stop" => {
                            let me = cx.current_source().expect("inside its callback");
                            cx.deregister_source(me).unwrap();
                            tally.stopped = true;
                            return;
                        }
                        number => tally.total += number.parse::<u64>().unwrap(),
                    }
                }
            },
        )
        .unwrap();
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for n in [3u64, 4, 5] {
        sender.send_to(n.to_string().as_bytes(), udp_addr).unwrap();
    }
    let mut tally = Tally::default();
    let deadline = Instant::now() + PATIENCE;
    while tally.total < 12 {
        assert!(Instant::now() < deadline, "total {}", tally.total);
        reactor
            .run_once(&mut tally, Some(Duration::from_millis(10)))
            .unwrap();
    }
    // A TCP client reads what the datagrams added to the same handler.
    let mut client = util::connect(addr);
    client.set_nonblocking(true).unwrap(); // the loop runs on this thread
    client.write_all(b"total?\n").unwrap();
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\n") {
        assert!(Instant::now() < deadline, "no answer");
        reactor
            .run_once(&mut tally, Some(Duration::from_millis(10)))
            .unwrap();
        if let Ok(1) = client.read(&mut byte) {
            answer.push(byte[0]);
        }
    }
    assert_eq!(answer, b"12\n");
    // The callback can remove its own source; what comes later is not read.
    sender.send_to(b"stop", udp_addr).unwrap();
    while !tally.stopped {
        assert!(Instant::now() < deadline, "stop not heard");
        reactor
            .run_once(&mut tally, Some(Duration::from_millis(10)))
            .unwrap();
    }
    sender.send_to(b"100", udp_addr).unwrap();
    for _ in 0..5 {
        reactor
            .run_once(&mut tally, Some(Duration::from_millis(10)))
            .unwrap();
    }
    assert_eq!(tally.total, 12);
}
per_backend!(a_source_callback_is_lent_the_handler);

#[cfg(unix)]
/// A loop whose sources were registered for one handler type refuses to
/// run with another (the callbacks could not be lent it), and refuses a
/// source registered for a second type; both errors name the types. Once
/// those sources are gone, the type is free again.
#[test]
fn a_source_for_one_handler_type_refuses_another() {
    let mut reactor = Reactor::new().unwrap();
    let (ours, _theirs) = mio::net::UnixStream::pair().unwrap();
    let first_tally = reactor
        .register_source_with_handler(ours, Interest::READABLE, |_: &mut Tally, _, _, _| {})
        .unwrap();
    // Another for the same type is welcome...
    let (again, _its_peer) = mio::net::UnixStream::pair().unwrap();
    let second_tally = reactor
        .register_source_with_handler(again, Interest::READABLE, |_: &mut Tally, _, _, _| {})
        .unwrap();
    // ...one for another type is not.
    let (second, _other) = mio::net::UnixStream::pair().unwrap();
    let refused = reactor
        .register_source_with_handler(second, Interest::READABLE, |_: &mut Dialer, _, _, _| {})
        .unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::InvalidInput);
    assert!(refused.to_string().contains("Tally"), "{refused}");
    assert!(refused.to_string().contains("Dialer"), "{refused}");
    let mut dialer = Dialer::default();
    let refused = reactor
        .run_once(&mut dialer, Some(Duration::ZERO))
        .unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::InvalidInput);
    assert!(refused.to_string().contains("Tally"), "{refused}");
    assert!(refused.to_string().contains("Dialer"), "{refused}");
    let mut tally = Tally::default();
    reactor.run_once(&mut tally, Some(Duration::ZERO)).unwrap();
    // Once the sources that needed a Tally are gone, any handler will do.
    reactor.deregister_source(first_tally).unwrap();
    assert!(reactor.run_once(&mut dialer, Some(Duration::ZERO)).is_err());
    reactor.deregister_source(second_tally).unwrap();
    reactor.run_once(&mut dialer, Some(Duration::ZERO)).unwrap();
    let (later, _peer) = mio::net::UnixStream::pair().unwrap();
    reactor
        .register_source_with_handler(later, Interest::READABLE, |_: &mut Dialer, _, _, _| {})
        .unwrap();
}
