//! Unit tests of the reactor that drive `dispatch` with hand-built batches.

use std::io::{Read, Write};
use std::net::TcpStream as StdStream;
use std::os::unix::io::RawFd;

use super::*;
use crate::close::{CloseReason, Origin};
use crate::token::{self, ConnId};
use crate::Interest;

/// Waits (5 s at most) until `fd` is readable: a bounded wait on the very
/// condition the next step needs, instead of a sleep that hopes.
fn wait_readable(fd: RawFd) {
    let mut poll_fd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd, valid for the duration of the call.
    let ready = unsafe { libc::poll(&mut poll_fd, 1, 5_000) };
    assert_eq!(ready, 1, "descriptor {fd} not readable within 5 s");
}

/// Waits (5 s at most) until `fd` has at least `bytes` bytes to read, so a
/// test that counts reads does not depend on how the kernel splits a send.
fn wait_queued(fd: RawFd, bytes: usize) {
    for _ in 0..5_000 {
        let mut queued: libc::c_int = 0;
        // SAFETY: FIONREAD writes one c_int through the pointer.
        let ok = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut queued) };
        assert_eq!(ok, 0, "FIONREAD on descriptor {fd}");
        if queued as usize >= bytes {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("descriptor {fd} never had {bytes} bytes queued");
}

fn listener_fd(reactor: &Reactor, listener: ListenerId) -> RawFd {
    reactor.core.listeners.raw_fd(listener).unwrap()
}

fn conn_fd(reactor: &Reactor, conn: ConnId) -> RawFd {
    reactor.core.conns.get(conn).unwrap().socket().raw_source()
}

/// Records which connection each message and close was delivered to.
#[derive(Default)]
struct Recorder {
    connected: Vec<ConnId>,
    messages: Vec<(ConnId, Vec<u8>)>,
    closed: Vec<ConnId>,
}

impl Handler for Recorder {
    fn on_connect(&mut self, _cx: &mut Context<'_>, conn: ConnId) {
        self.connected.push(conn);
    }
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
        self.messages.push((conn, msg.to_vec()));
        let _ = cx.send_frame(conn, msg);
    }
    fn on_close(&mut self, _cx: &mut Context<'_>, conn: ConnId, _reason: &CloseReason) {
        self.closed.push(conn);
    }
}

fn turn_until(reactor: &mut Reactor, handler: &mut Recorder, done: impl Fn(&Recorder) -> bool) {
    for _ in 0..2000 {
        if done(handler) {
            return;
        }
        reactor
            .run_once(handler, Some(Duration::from_millis(5)))
            .unwrap();
    }
    panic!("condition not reached");
}

/// A reactor with `config`, listening on loopback, one client connected
/// and accepted: the setup most of these tests start from.
struct OneClient {
    reactor: Reactor,
    handler: Recorder,
    listener: ListenerId,
    addr: std::net::SocketAddr,
    client: StdStream,
    conn: ConnId,
}

fn one_client(config: Config) -> OneClient {
    let mut reactor = Reactor::with_config(config).unwrap();
    let listener = reactor.listen("127.0.0.1:0").unwrap();
    let addr = reactor.local_addr(listener).unwrap();
    let client = StdStream::connect(addr).unwrap();
    let mut handler = Recorder::default();
    turn_until(&mut reactor, &mut handler, |h| h.connected.len() == 1);
    let conn = handler.connected[0];
    OneClient {
        reactor,
        handler,
        listener,
        addr,
        client,
        conn,
    }
}

/// The token of a closed connection must never reach the connection that
/// reuses its slot. Events are fed by hand, in the order that hurts:
/// [conn k closes] [new conn takes slot k] [stale event for the old k].
#[test]
fn stale_token_never_reaches_the_connection_that_reuses_its_slot() {
    let mut reactor = Reactor::new().unwrap();
    let listener = reactor.listen("127.0.0.1:0").unwrap();
    let addr = reactor.local_addr(listener).unwrap();
    let listener_token = token::listener_token(listener);
    let mut handler = Recorder::default();

    // Connection A, accepted through a synthetic listener event.
    let client_a = StdStream::connect(addr).unwrap();
    turn_until(&mut reactor, &mut handler, |h| h.connected.len() == 1);
    let old = handler.connected[0];

    // Batch 1: A's peer resets (A closes in this batch), a new client
    // is accepted in the same batch, then a stale event for A arrives.
    socket2::SockRef::from(&client_a)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(client_a);
    let mut client_b = StdStream::connect(addr).unwrap();
    wait_readable(listener_fd(&reactor, listener));
    wait_readable(conn_fd(&reactor, old)); // the reset has arrived
    reactor.dispatch(
        &mut handler,
        &[
            Readiness {
                read_closed: true,
                ..Readiness::readable(old.token())
            },
            Readiness::readable(listener_token),
            Readiness::readable(old.token()),
        ],
    );
    assert_eq!(handler.closed, [old]);
    assert_eq!(handler.connected.len(), 2);
    let b = handler.connected[1];
    assert_ne!(
        b.slot(),
        old.slot(),
        "a slot is reused only after its batch"
    );
    assert_eq!(reactor.stats().stale_events, 1);

    // Batch 2: connection C takes A's freed slot; a late event for A must
    // not be delivered to C.
    let mut client_c = StdStream::connect(addr).unwrap();
    wait_readable(listener_fd(&reactor, listener));
    reactor.dispatch(&mut handler, &[Readiness::readable(listener_token)]);
    let c = handler.connected[2];
    assert_eq!(c.slot(), old.slot());
    assert_ne!(c, old);
    client_c.write_all(b"for c\n").unwrap();
    wait_readable(conn_fd(&reactor, c));
    reactor.dispatch(&mut handler, &[Readiness::readable(old.token())]);
    assert_eq!(reactor.stats().stale_events, 2);
    assert!(handler.messages.is_empty(), "stale event read C's data");
    assert!(reactor.context().is_open(c) && reactor.context().is_open(b));

    // C's own event still works, and both new connections are untouched.
    reactor.dispatch(&mut handler, &[Readiness::readable(c.token())]);
    assert_eq!(handler.messages, [(c, b"for c".to_vec())]);
    let mut echo = [0; 6];
    client_c.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"for c\n");
    client_b.write_all(b"for b\n").unwrap();
    turn_until(&mut reactor, &mut handler, |h| h.messages.len() == 2);
    assert_eq!(handler.messages[1], (b, b"for b".to_vec()));
    assert_eq!(handler.closed, [old]);
}

#[test]
fn listen_uses_the_configured_backlog_and_several_listeners() {
    let mut reactor = Reactor::with_config(Config::new().backlog(2048)).unwrap();
    let a = reactor.listen("127.0.0.1:0").unwrap();
    let b = reactor.listen("127.0.0.1:0").unwrap();
    let (addr_a, addr_b) = (
        reactor.local_addr(a).unwrap(),
        reactor.local_addr(b).unwrap(),
    );
    assert_ne!(addr_a.port(), 0);
    assert_ne!(addr_a, addr_b);
    let mut handler = Recorder::default();
    let _c1 = StdStream::connect(addr_a).unwrap();
    let _c2 = StdStream::connect(addr_b).unwrap();
    turn_until(&mut reactor, &mut handler, |h| h.connected.len() == 2);
}

#[test]
fn idle_connections_hold_no_buffers() {
    let mut reactor = Reactor::new().unwrap();
    let listener = reactor.listen("127.0.0.1:0").unwrap();
    let addr = reactor.local_addr(listener).unwrap();
    let mut handler = Recorder::default();
    let mut clients: Vec<StdStream> = (0..100)
        .map(|_| StdStream::connect(addr).unwrap())
        .collect();
    turn_until(&mut reactor, &mut handler, |h| h.connected.len() == 100);
    for client in &mut clients {
        client.write_all(b"busy for a moment\n").unwrap();
    }
    // Bounded: `turn_until` gives up after 2,000 turns of at most 5 ms.
    turn_until(&mut reactor, &mut handler, |h| h.messages.len() == 100);
    for client in &mut clients {
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut echo = [0; 18];
        client.read_exact(&mut echo).expect("echo within 5 s");
        assert_eq!(&echo, b"busy for a moment\n");
    }
    let per_connection = reactor.connection_heap_bytes() / 100;
    eprintln!(
        "idle connection heap: {per_connection} bytes (Conn is {} bytes)",
        std::mem::size_of::<crate::conn::Conn>()
    );
    // Its slot, and not one buffer (the smallest is 1 KiB).
    let slot = std::mem::size_of::<crate::conn::Conn>() + std::mem::size_of::<usize>();
    assert_eq!(
        per_connection, slot,
        "an idle connection holds {per_connection} heap bytes"
    );
    // The slot itself stays within 256 bytes, even in a build with debug
    // assertions, where each mio socket carries 16 bytes more.
    assert!(slot <= 256, "a slot of {slot} bytes");
}

/// A readable event that finds the socket empty (its bytes were read on
/// the turn before, which spent the read budget on exactly them) takes a
/// read buffer for a read that returns `WouldBlock`; the buffer goes back
/// at once. It used to stay with the connection until the peer spoke
/// again: 5,000 such connections pinned 5,000 buffers, and the pool then
/// allocated (and the kernel zeroed) new ones for everyone else.
#[test]
fn a_read_that_finds_nothing_keeps_no_buffer() {
    // The client stays open: its end of input would close the connection.
    let OneClient {
        mut reactor,
        mut handler,
        client: _client,
        conn,
        ..
    } = one_client(Config::new());
    let idle = reactor.connection_heap_bytes();
    // The event, with nothing to read behind it.
    reactor.dispatch(&mut handler, &[Readiness::readable(conn.token())]);
    assert!(reactor
        .core
        .conns
        .get(conn)
        .unwrap()
        .read_this_turn(reactor.stats().turns));
    assert_eq!(
        reactor.connection_heap_bytes(),
        idle,
        "the connection kept the buffer of a read that found nothing"
    );
}

/// The deadlines of connects that completed used to stay until they
/// expired; now a connect leaves the set as soon as it is settled.
#[test]
fn completed_connects_leave_no_deadline_behind() {
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut reactor = Reactor::new().unwrap();
    let mut handler = Recorder::default();
    for _ in 0..20 {
        reactor.connect(upstream.local_addr().unwrap()).unwrap();
    }
    assert_eq!(reactor.core.connects.len(), 20);
    turn_until(&mut reactor, &mut handler, |h| h.connected.len() == 20);
    assert_eq!(reactor.core.connects.len(), 0);
    assert_eq!(reactor.core.connects.next_at(), None);
}

/// A source's id had no generation and its slot was freed at once: an event
/// still queued under the old id reached the source registered next.
#[test]
fn a_deregistered_source_id_never_reaches_its_successor() {
    use std::cell::Cell;
    use std::rc::Rc;
    let mut reactor = Reactor::new().unwrap();
    let (a, _a_peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let old = reactor.register_source(&a, Interest::READABLE).unwrap();
    reactor.deregister_source(old).unwrap();
    let (b, _b_peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let fired = Rc::new(Cell::new(0));
    let counter = fired.clone();
    let new = reactor
        .register_source_with(b, Interest::READABLE, move |_, _, _| {
            counter.set(counter.get() + 1)
        })
        .unwrap();
    assert_ne!(old, new, "the slot is reused under a new generation");
    let mut handler = Recorder::default();
    // A late event for the old source, in the same batch as one for the new.
    reactor.dispatch(
        &mut handler,
        &[
            Readiness::readable(old.token()),
            Readiness::readable(new.token()),
        ],
    );
    assert_eq!(fired.get(), 1, "only the new source's own event reached it");
    assert_eq!(reactor.stats().stale_events, 1);
    // Deregistering the old id again must not remove the new source.
    let again = reactor.deregister_source(old).unwrap_err();
    assert_eq!(again.kind(), io::ErrorKind::NotFound);
    reactor.dispatch(&mut handler, &[Readiness::readable(new.token())]);
    assert_eq!(fired.get(), 2, "the new source is still registered");
}

/// With `catch_panics(false)` a panic unwound out of a turn and lost the
/// lists that turn had taken: connections stayed flagged as queued forever.
/// The reactor now refuses to run another turn.
#[test]
fn a_reactor_whose_turn_panicked_refuses_further_turns() {
    let mut reactor = Reactor::with_config(
        Config::new()
            .catch_panics(false)
            .codec(crate::codec::Lines::new(64)),
    )
    .unwrap();
    let listener = reactor.listen("127.0.0.1:0").unwrap();
    let mut client = StdStream::connect(reactor.local_addr(listener).unwrap()).unwrap();
    client.write_all(b"boom\n").unwrap();
    let mut handler = |_: &mut Context<'_>, _: ConnId, _: &[u8]| panic!("handler bug");
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for _ in 0..1000 {
            reactor
                .run_once(&mut handler, Some(Duration::from_millis(5)))
                .unwrap();
        }
    }));
    assert!(unwound.is_err(), "the panic propagates");
    let refused = reactor
        .run_once(&mut handler, Some(Duration::ZERO))
        .unwrap_err();
    assert!(refused.to_string().contains("panicked"), "{refused}");
}

/// `Config::read_buffer_size` was ignored: every fresh read buffer was
/// 1 KiB. A connection holding a partial message keeps its buffer, whose
/// size is the one configured.
#[test]
fn fresh_read_buffers_have_the_configured_size() {
    let config = Config::new()
        .codec(crate::codec::Lines::new(1024))
        .read_buffer_size(64);
    let OneClient {
        mut reactor,
        mut handler,
        mut client,
        conn,
        ..
    } = one_client(config);
    client.write_all(b"no newline yet").unwrap();
    wait_readable(conn_fd(&reactor, conn));
    reactor.dispatch(&mut handler, &[Readiness::readable(conn.token())]);
    let held = reactor.core.conns.get(conn).unwrap().heap_bytes();
    assert!(
        (64..1024).contains(&held),
        "a partial message holds {held} bytes of buffer"
    );
}

/// A socket that filled its read budget is read again next turn; that turn
/// does not poll first (a zero-timeout poll that mostly finds nothing was
/// one system call in three for a stream of 64 KiB bursts), and the turn
/// after it polls again whatever is left, so new events wait one turn at
/// most.
#[test]
fn work_left_by_a_polling_turn_is_done_before_polling_again() {
    const BUDGET: usize = 4096;
    let OneClient {
        mut reactor,
        mut handler,
        listener,
        addr,
        client: mut streaming,
        conn,
    } = one_client(Config::new().read_budget(BUDGET));
    // Two budgets' worth: the stream has bytes left after every read.
    streaming.write_all(&[b'x'; 2 * BUDGET]).unwrap();
    wait_queued(conn_fd(&reactor, conn), 2 * BUDGET);

    let before = reactor.stats();
    reactor.run_once(&mut handler, None).unwrap();
    let first = reactor.stats();
    assert_eq!(first.polls, before.polls + 1, "the first turn polls");
    assert_eq!(first.budget_exhausted, before.budget_exhausted + 1);

    // A second client speaks now: its event waits in the poller.
    let mut late = StdStream::connect(addr).unwrap();
    late.write_all(b"late").unwrap();
    wait_readable(listener_fd(&reactor, listener));

    reactor.run_once(&mut handler, None).unwrap();
    let second = reactor.stats();
    assert_eq!(
        second.polls, first.polls,
        "the ready list was served without a poll"
    );
    assert_eq!(second.bytes_read, first.bytes_read + BUDGET as u64);
    assert_eq!(
        handler.connected.len(),
        1,
        "the skipped poll saw the newcomer"
    );

    reactor.run_once(&mut handler, None).unwrap();
    let third = reactor.stats();
    assert_eq!(third.polls, second.polls + 1, "a turn after a skip polls");
    assert_eq!(handler.connected.len(), 2, "the newcomer waited one turn");
}

/// A turn that skipped its poll may leave events unread in the poller,
/// and a loop driving the reactor through its descriptor gets no new edge
/// for them: `next_turn_in` says to come back at once.
#[test]
fn next_turn_in_is_zero_after_a_turn_that_skipped_its_poll() {
    const BUDGET: usize = 4096;
    let OneClient {
        mut reactor,
        mut handler,
        mut client,
        conn,
        ..
    } = one_client(Config::new().read_budget(BUDGET));
    assert_eq!(reactor.next_turn_in(), None, "idle, no timer");

    // Exactly one budget: the first turn spends it, the second finds the
    // socket empty, without polling.
    client.write_all(&[b'x'; BUDGET]).unwrap();
    wait_queued(conn_fd(&reactor, conn), BUDGET);
    reactor.run_once(&mut handler, None).unwrap();
    assert_eq!(reactor.next_turn_in(), Some(Duration::ZERO), "budget spent");
    let polls = reactor.stats().polls;
    reactor.run_once(&mut handler, None).unwrap();
    assert_eq!(reactor.stats().polls, polls, "the second turn polled");
    assert!(!reactor.core.work_left());
    assert_eq!(
        reactor.next_turn_in(),
        Some(Duration::ZERO),
        "events may wait unread after a skipped poll"
    );
    reactor
        .run_once(&mut handler, Some(Duration::ZERO))
        .unwrap();
    assert_eq!(reactor.next_turn_in(), None, "a poll took them");
}

/// A poll that filled its batch leaves the other ready sockets in the
/// poller, with no new edge to announce them.
#[test]
fn next_turn_in_is_zero_after_a_full_batch() {
    let mut reactor = Reactor::with_config(Config::new().events_capacity(1)).unwrap();
    let listener = reactor.listen("127.0.0.1:0").unwrap();
    let addr = reactor.local_addr(listener).unwrap();
    let mut handler = Recorder::default();
    let mut clients = [
        StdStream::connect(addr).unwrap(),
        StdStream::connect(addr).unwrap(),
    ];
    turn_until(&mut reactor, &mut handler, |h| h.connected.len() == 2);
    while reactor.next_turn_in().is_some() {
        reactor
            .run_once(&mut handler, Some(Duration::ZERO))
            .unwrap();
    }
    for (client, &conn) in clients.iter_mut().zip(&handler.connected) {
        client.write_all(b"ping\n").unwrap();
        wait_readable(conn_fd(&reactor, conn));
    }
    reactor.run_once(&mut handler, None).unwrap();
    assert_eq!(handler.messages.len(), 1, "one event per batch");
    assert_eq!(
        reactor.next_turn_in(),
        Some(Duration::ZERO),
        "the batch was full"
    );
    reactor.run_once(&mut handler, None).unwrap();
    assert_eq!(handler.messages.len(), 2);
}

/// An accept storm used to put the same listener on the ready list once per
/// event that found its budget spent; the flag lists it once, and serving
/// the list clears the flag so that the next storm may list it again.
#[test]
fn a_listener_is_on_the_ready_list_at_most_once() {
    let mut reactor = Reactor::with_config(Config::new().accept_budget(1)).unwrap();
    let listener = reactor.listen("127.0.0.1:0").unwrap();
    let addr = reactor.local_addr(listener).unwrap();
    let clients: Vec<StdStream> = (0..6).map(|_| StdStream::connect(addr).unwrap()).collect();
    wait_readable(listener_fd(&reactor, listener));
    let mut handler = Recorder::default();
    let token = token::listener_token(listener);
    // Three events for the listener in one batch: each accepts one (the
    // budget) and finds more waiting.
    let storm = [Readiness::readable(token); 3];
    reactor.dispatch(&mut handler, &storm);
    assert_eq!(handler.connected.len(), 3);
    assert_eq!(reactor.core.ready.take(), vec![token], "listed once");
    // Served from the list (here: the list taken above, put back by hand),
    // the flag is cleared and it may be listed again.
    reactor.core.ready.push(token);
    reactor.dispatch(&mut handler, &[]);
    assert_eq!(handler.connected.len(), 4);
    assert_eq!(reactor.core.ready.take(), vec![token], "listed again");
    drop(clients);
}

/// Each connection says where it came from: the listener that accepted
/// it, a connect of the reactor's own, or a handle's hand-over; the three
/// never read as each other.
#[test]
fn a_connection_knows_whether_it_was_accepted_connected_or_adopted() {
    let OneClient {
        mut reactor,
        mut handler,
        listener,
        addr,
        client: _client,
        conn: accepted,
    } = one_client(Config::new());
    let outbound = reactor.connect(addr).unwrap();
    let handle = reactor.handle().unwrap();
    handle.adopt(StdStream::connect(addr).unwrap()).unwrap();
    turn_until(&mut reactor, &mut handler, |h| h.connected.len() >= 3);
    let cx = reactor.context();
    assert_eq!(cx.origin(accepted), Some(Origin::Accepted(listener)));
    assert_eq!(cx.origin(outbound), Some(Origin::Outbound));
    let adopted: Vec<_> = handler
        .connected
        .iter()
        .filter(|&&id| cx.origin(id) == Some(Origin::Adopted))
        .collect();
    assert_eq!(adopted.len(), 1, "{:?}", handler.connected);
}

mod sockets;
