//! The sockets the loop makes: their options, and who moves their bytes.

use super::*;
use crate::backend::BackendKind;

/// Whether `fd` (a TCP socket) has TCP_NODELAY.
fn has_nodelay(fd: RawFd) -> bool {
    let mut on: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes one c_int and its length through the pointers.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&mut on as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "getsockopt on descriptor {fd}");
    on != 0
}

/// Accepted connections have TCP_NODELAY as `Config::nodelay` says, on
/// every backend; on Linux from their listener (set once there, which
/// Linux copies to each socket it accepts), with no call per connection.
#[test]
fn accepted_connections_have_nodelay_as_configured() {
    for backend in [BackendKind::Epoll, BackendKind::Poll, BackendKind::Uring] {
        for nodelay in [true, false] {
            let config = Config::new().backend(backend).nodelay(nodelay);
            let one = one_client(config);
            let fd = conn_fd(&one.reactor, one.conn);
            assert_eq!(has_nodelay(fd), nodelay, "{backend:?}, nodelay {nodelay}");
            #[cfg(target_os = "linux")]
            {
                let listener = listener_fd(&one.reactor, one.listener);
                assert_eq!(has_nodelay(listener), nodelay, "{backend:?}'s listener");
                assert_eq!(
                    one.reactor
                        .core
                        .listeners
                        .gives_nodelay(one.listener.0 as u32),
                    nodelay
                );
            }
        }
    }
}

/// On io_uring a connection the loop opens is polled while it connects,
/// then served by the ring as an accepted one is: its bytes move both
/// ways through completions.
#[cfg(target_os = "linux")]
#[test]
fn a_connection_the_loop_opens_is_served_by_the_ring_once_connected() {
    let peer_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = Config::new().backend(BackendKind::Uring);
    let mut reactor = Reactor::with_config(config).unwrap();
    assert_eq!(reactor.backend_name(), "uring", "io_uring is needed here");
    let mut handler = Recorder::default();
    let id = reactor
        .connect(peer_listener.local_addr().unwrap())
        .unwrap();
    let (mut peer, _) = peer_listener.accept().unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    turn_until(&mut reactor, &mut handler, |h| h.connected.contains(&id));
    let socket = reactor.core.conns.get(id).unwrap().socket();
    assert!(
        matches!(socket, crate::stream::Stream::Ring(_)),
        "still polled: {socket:?}"
    );
    // The recorder echoes what it receives.
    peer.write_all(b"ping\n").unwrap();
    turn_until(&mut reactor, &mut handler, |h| !h.messages.is_empty());
    let mut echoed = [0u8; 5];
    peer.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"ping\n");
    // The reply went as the output's own buffer, not a copy of it.
    let crate::stream::Stream::Ring(ring) = reactor.core.conns.get(id).unwrap().socket() else {
        unreachable!("served by the ring, above")
    };
    assert_eq!(ring.buffers_taken_whole(), 1, "the reply was copied");
}

/// The peer's address is the client's, on every backend: on io_uring
/// for a connection the ring accepted without asking for it.
#[test]
fn an_accepted_connection_knows_its_peer() {
    for backend in [BackendKind::Epoll, BackendKind::Poll, BackendKind::Uring] {
        let mut one = one_client(Config::new().backend(backend));
        let client = one.client.local_addr().unwrap();
        assert_eq!(
            one.reactor.context().peer_addr(one.conn),
            Some(client),
            "{backend:?}"
        );
    }
}
