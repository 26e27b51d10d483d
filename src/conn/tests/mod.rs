//! Unit tests of one connection: reading and framing over a real socket
//! pair, the inbound limits, the clocks.

use std::io::Write;
use std::time::Duration;

use super::buffer::BufferPool;
use super::conn::{Expired, QueuedFrame, ReadEnd, ReadLimits};
use super::turn::ReadReport;
use super::ConnTable;
use crate::codec::{Codec, DecodeError, Lines};
use crate::limits::Timeouts;
use crate::stream::Stream;
use crate::token::ConnId;

fn conn_table_with_one() -> (ConnTable, ConnId, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    let mut table = ConnTable::with_capacity(1);
    let stream = Stream::Tcp(mio::net::TcpStream::from_std(server));
    let id = table.insert(stream, 0, false, None, |_, _| Ok(())).unwrap();
    (table, id, peer)
}

/// `Config::read_buffer_size` used to be ignored: fresh buffers were
/// always 1 KiB.
#[test]
fn a_fresh_read_buffer_has_the_configured_size() {
    let (mut table, id, _peer) = conn_table_with_one();
    let conn = table.get_mut(id).unwrap();
    let limits = ReadLimits {
        messages: 1024,
        bytes: 1 << 20,
        max_message: 1 << 20,
        min_read: 64,
    };
    let mut pool = BufferPool::new(4);
    assert_eq!(conn.make_room(1 << 20, &limits, &mut pool), 64);
    // Exactly the least free space: no growth.
    assert_eq!(conn.make_room(1 << 20, &limits, &mut pool), 64);
    assert_eq!(conn.inbuf.len(), 64);
    // Less than a budget's worth is asked for when less is left.
    assert_eq!(conn.make_room(10, &limits, &mut pool), 10);
    conn.filled = 64;
    // Full: it doubles.
    assert_eq!(conn.make_room(1 << 20, &limits, &mut pool), 64);
    assert_eq!(conn.inbuf.len(), 128);
}

/// The inbound queue is full at either limit, messages or bytes, each
/// from exactly its value.
#[test]
fn the_inbound_queue_is_full_at_either_limit() {
    let (mut table, id, _peer) = conn_table_with_one();
    let conn = table.get_mut(id).unwrap();
    let limits = ReadLimits {
        messages: 2,
        bytes: 100,
        max_message: 1 << 20,
        min_read: 64,
    };
    assert!(!conn.queue_full(&limits));
    let frame = QueuedFrame {
        start: 0,
        end: 1,
        next: 1,
        message: true,
    };
    conn.frames.push_back(frame);
    conn.framed = 99;
    assert!(!conn.queue_full(&limits), "one message, 99 bytes");
    conn.framed = 100;
    assert!(conn.queue_full(&limits), "the byte limit alone");
    conn.framed = 1;
    conn.frames.push_back(frame);
    assert!(conn.queue_full(&limits), "the message limit alone");
}

/// A connection is past its idle timeout strictly after it, and past
/// its message deadline only while a message is under way.
#[test]
fn timeouts_expire_strictly_after_their_limit() {
    let (mut table, id, _peer) = conn_table_with_one();
    let conn = table.get_mut(id).unwrap();
    conn.timeouts = Timeouts {
        idle_ms: 100,
        message_ms: 50,
    };
    conn.last_progress_ms = 1_000;
    assert_eq!(conn.expired(1_100), None, "at the limit: not yet");
    assert_eq!(conn.expired(1_101), Some(Expired::Idle));
    // No message under way: the deadline does not apply.
    conn.last_progress_ms = 1_090;
    assert_eq!(conn.expired(1_100), None);
    conn.partial_since_ms = 1_040;
    assert_eq!(conn.expired(1_090), None, "50 ms: not yet");
    assert_eq!(conn.expired(1_091), Some(Expired::Message));
    // Idle is checked first, and 0 means unset, never expired.
    assert_eq!(conn.expired(5_000), Some(Expired::Idle));
    conn.timeouts = Timeouts {
        idle_ms: 0,
        message_ms: 0,
    };
    assert_eq!(conn.expired(u64::MAX), None, "no timeouts set");
    conn.timeouts.idle_ms = 100;
    conn.last_progress_ms = 0;
    assert_eq!(conn.expired(u64::MAX), None, "no stamp yet");
}

/// Offsets were `u32`, while the inbound limits accept any byte count:
/// a queue past 4 GiB would have wrapped them.
#[test]
fn frame_offsets_past_four_gib_do_not_wrap() {
    let (mut table, id, _peer) = conn_table_with_one();
    let conn = table.get_mut(id).unwrap();
    let base = 5usize << 30;
    conn.framed = base;
    let codec = Codec::from(Lines::new(64));
    let frame = codec.decode(b"abc\n").unwrap().unwrap();
    conn.push_frame(frame);
    let queued = conn.frames[0];
    assert_eq!(
        (queued.start, queued.end, queued.next),
        (base, base + 3, base + 4)
    );
    // A frame whose payload starts after a header.
    let prefixed = Codec::from(crate::codec::LengthPrefixed::new(64));
    let frame = prefixed
        .decode(&[0, 0, 0, 3, b'x', b'y', b'z'])
        .unwrap()
        .unwrap();
    conn.push_frame(frame);
    let queued = conn.frames[1];
    assert_eq!(
        (queued.start, queued.end, queued.next),
        (base + 8, base + 11, base + 11)
    );
}

fn limits(messages: usize, max_message: usize) -> ReadLimits {
    ReadLimits {
        messages,
        bytes: 1 << 20,
        max_message,
        min_read: 1024,
    }
}

/// Writes `bytes` from the peer and waits until the server's socket holds
/// them all (a read then finds them in one go).
fn send(peer: &mut std::net::TcpStream, server_fd: std::os::unix::io::RawFd, bytes: &[u8]) {
    peer.write_all(bytes).unwrap();
    for _ in 0..5_000 {
        let mut queued: libc::c_int = 0;
        // SAFETY: FIONREAD writes one c_int through the pointer.
        assert_eq!(
            unsafe { libc::ioctl(server_fd, libc::FIONREAD, &mut queued) },
            0
        );
        if queued as usize >= bytes.len() {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("the bytes never arrived");
}

fn fd_of(table: &ConnTable, id: ConnId) -> std::os::unix::io::RawFd {
    table.get(id).unwrap().socket().raw_source()
}

/// Lines are cut as they arrive; a partial one waits (and starts the
/// message clock); the next read completes it. Each read stamps the turn
/// and, when bytes moved, the idle clock.
#[test]
fn reading_cuts_lines_and_keeps_a_partial_one_for_later() {
    let (mut table, id, mut peer) = conn_table_with_one();
    let fd = fd_of(&table, id);
    let codec = Codec::from(Lines::new(16));
    let mut pool = BufferPool::new(4);
    send(&mut peer, fd, b"ab\ncd\nef");
    let conn = table.get_mut(id).unwrap();
    let report = conn.read_turn(
        &codec,
        64 * 1024,
        limits(100, 16),
        false,
        &mut pool,
        7,
        1_000,
    );
    let ReadReport {
        bytes,
        end,
        completed,
        handling_paused,
    } = report;
    assert_eq!((bytes, completed, handling_paused), (8, true, false));
    assert!(matches!(end, ReadEnd::Drained), "{end:?}");
    assert_eq!(conn.queued_messages(), 2);
    assert!(conn.has_partial_message(), "\"ef\" waits for its newline");
    assert!(conn.read_this_turn(7) && !conn.read_this_turn(8));
    assert_eq!(
        (conn.last_progress_ms, conn.partial_since_ms),
        (1_000, 1_000)
    );
    // Nothing new: a read finds nothing, moves no clock.
    let report = conn.read_turn(
        &codec,
        64 * 1024,
        limits(100, 16),
        false,
        &mut pool,
        8,
        2_000,
    );
    assert_eq!((report.bytes, report.completed), (0, false));
    assert_eq!(
        (conn.last_progress_ms, conn.partial_since_ms),
        (1_000, 1_000)
    );
    send(&mut peer, fd, b"\n");
    let conn = table.get_mut(id).unwrap();
    let report = conn.read_turn(
        &codec,
        64 * 1024,
        limits(100, 16),
        false,
        &mut pool,
        9,
        3_000,
    );
    assert_eq!((report.bytes, report.completed), (1, true));
    assert_eq!(conn.queued_messages(), 3);
    assert!(!conn.has_partial_message());
    assert_eq!((conn.last_progress_ms, conn.partial_since_ms), (3_000, 0));
    let lines: Vec<_> = std::iter::from_fn(|| conn.next_message(usize::MAX))
        .map(|f| (f.start, f.end, f.next))
        .collect();
    assert_eq!(lines, [(0, 2, 3), (3, 5, 6), (6, 8, 9)]);
    // A message ends and the next begins in one read: the deadline
    // restarts from that read.
    send(&mut peer, fd, b"gh");
    let conn = table.get_mut(id).unwrap();
    conn.read_turn(
        &codec,
        64 * 1024,
        limits(100, 16),
        false,
        &mut pool,
        10,
        4_000,
    );
    assert_eq!(conn.partial_since_ms, 4_000);
    send(&mut peer, fd, b"\nij");
    let conn = table.get_mut(id).unwrap();
    let report = conn.read_turn(
        &codec,
        64 * 1024,
        limits(100, 16),
        false,
        &mut pool,
        11,
        5_000,
    );
    assert!(report.completed);
    assert_eq!(conn.partial_since_ms, 5_000, "\"ij\" began at 5,000");
}

/// A read stops at the byte budget, and at a full inbound queue, and says
/// which.
#[test]
fn a_read_stops_at_the_budget_and_at_a_full_queue() {
    let (mut table, id, mut peer) = conn_table_with_one();
    let fd = fd_of(&table, id);
    let codec = Codec::from(Lines::new(64));
    let mut pool = BufferPool::new(4);
    send(&mut peer, fd, b"a\nb\nc\nd\n");
    let conn = table.get_mut(id).unwrap();
    let report = conn.read_turn(&codec, 3, limits(100, 64), false, &mut pool, 1, 1);
    assert!(
        matches!(report.end, ReadEnd::BudgetSpent),
        "{:?}",
        report.end
    );
    assert_eq!(report.bytes, 3);
    assert_eq!(conn.queued_messages(), 1, "\"a\\n\" and half of \"b\\n\"");
    let report = conn.read_turn(&codec, 1, limits(100, 64), false, &mut pool, 2, 2);
    assert!(
        matches!(report.end, ReadEnd::BudgetSpent),
        "{:?}",
        report.end
    );
    assert_eq!(conn.queued_messages(), 2);
    // Two messages wait, the limit: nothing more is read.
    let report = conn.read_turn(&codec, 64, limits(2, 64), false, &mut pool, 3, 3);
    assert!(matches!(report.end, ReadEnd::QueueFull), "{:?}", report.end);
    assert_eq!((report.bytes, conn.queued_messages()), (0, 2));
    // Room again: the rest comes.
    let report = conn.read_turn(&codec, 64, limits(100, 64), false, &mut pool, 4, 4);
    assert_eq!((report.bytes, conn.queued_messages()), (4, 4));
}

/// A read across several buffer growths stops at exactly the budget, not
/// at whatever the last growth left free.
#[test]
fn a_read_over_several_growths_stops_at_exactly_the_budget() {
    let (mut table, id, mut peer) = conn_table_with_one();
    let fd = fd_of(&table, id);
    let codec = Codec::from(crate::codec::Chunks::new(1 << 16));
    let mut pool = BufferPool::new(4);
    send(&mut peer, fd, &[b'x'; 8_000]);
    let conn = table.get_mut(id).unwrap();
    let report = conn.read_turn(&codec, 3_000, limits(100, 1 << 16), false, &mut pool, 1, 1);
    assert!(
        matches!(report.end, ReadEnd::BudgetSpent),
        "{:?}",
        report.end
    );
    assert_eq!(report.bytes, 3_000);
}

/// The peer's end of input: a last line without its newline still counts;
/// a line past the maximum is refused, not cut.
#[test]
fn end_of_input_frames_the_last_line_and_an_oversize_line_is_refused() {
    let (mut table, id, mut peer) = conn_table_with_one();
    let fd = fd_of(&table, id);
    let codec = Codec::from(Lines::new(4));
    let mut pool = BufferPool::new(4);
    send(&mut peer, fd, b"one\ntail");
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    let conn = table.get_mut(id).unwrap();
    let report = conn.read_turn(&codec, 1024, limits(100, 4), true, &mut pool, 1, 1);
    assert!(
        matches!(report.end, ReadEnd::EndOfInput),
        "{:?}",
        report.end
    );
    assert_eq!(conn.queued_messages(), 2, "\"tail\" is a line at the end");

    let (mut table, id, mut peer) = conn_table_with_one();
    let fd = fd_of(&table, id);
    send(&mut peer, fd, b"ok\ntoolong\n");
    let conn = table.get_mut(id).unwrap();
    let report = conn.read_turn(&codec, 1024, limits(100, 4), false, &mut pool, 1, 1);
    match report.end {
        ReadEnd::Refused(DecodeError::TooLong(e)) => assert_eq!((e.len, e.max), (7, 4)),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(conn.queued_messages(), 1, "the line before it stays");
}

/// Handled messages leave the buffer and what is left moves to its front;
/// a drained buffer goes back to the pool; past the end of input a partial
/// message is dropped (it can never complete); a closed connection keeps
/// nothing.
#[test]
fn handled_messages_leave_the_buffer_and_the_rest_moves_to_its_front() {
    let (mut table, id, mut peer) = conn_table_with_one();
    let fd = fd_of(&table, id);
    let codec = Codec::from(Lines::new(16));
    let mut pool = BufferPool::new(4);
    send(&mut peer, fd, b"ab\ncd\nef");
    let conn = table.get_mut(id).unwrap();
    conn.read_turn(&codec, 1024, limits(100, 16), false, &mut pool, 1, 1);
    let buf = conn.take_inbuf();
    let first = conn.next_message(usize::MAX).unwrap();
    assert_eq!(&buf[first.start..first.end], b"ab");
    conn.restore_inbuf(buf, first.next, &mut pool);
    let buf = conn.take_inbuf();
    let second = conn.next_message(usize::MAX).unwrap();
    assert_eq!((second.start, second.end, second.next), (0, 2, 3));
    assert_eq!(&buf[..5], b"cd\nef");
    conn.restore_inbuf(buf, second.next, &mut pool);
    assert!(conn.has_partial_message());
    assert_eq!(pool.pooled().0, 0, "the partial line keeps its buffer");
    send(&mut peer, fd, b"\n");
    let conn = table.get_mut(id).unwrap();
    conn.read_turn(&codec, 1024, limits(100, 16), false, &mut pool, 2, 2);
    let buf = conn.take_inbuf();
    let third = conn.next_message(usize::MAX).unwrap();
    assert_eq!(&buf[third.start..third.end], b"ef");
    conn.restore_inbuf(buf, third.next, &mut pool);
    assert!(!conn.has_partial_message());
    assert_eq!(
        pool.pooled().0,
        1,
        "drained: the buffer is back in the pool"
    );

    // The peer's input ended with half a line: once the whole lines are
    // handled, the half is dropped with the buffer.
    send(&mut peer, fd, b"gh\nij");
    let conn = table.get_mut(id).unwrap();
    conn.read_turn(&codec, 1024, limits(100, 16), false, &mut pool, 3, 3);
    table.read_event(id, super::ReadEvent::InputEnded);
    let conn = table.get_mut(id).unwrap();
    let buf = conn.take_inbuf();
    let line = conn.next_message(usize::MAX).unwrap();
    assert_eq!(&buf[line.start..line.end], b"gh");
    conn.restore_inbuf(buf, 0, &mut pool);
    assert!(!conn.has_partial_message(), "\"ij\" can never complete");
    assert_eq!(conn.queued_messages(), 0);
    let buf = conn.take_inbuf();
    conn.restore_inbuf(buf, line.next, &mut pool);
    assert_eq!(pool.pooled().0, 1, "the buffer went back again");

    // A closed connection keeps neither bytes nor messages.
    let (mut table, id, mut peer) = conn_table_with_one();
    let fd = fd_of(&table, id);
    send(&mut peer, fd, b"kl\nmn\n");
    let conn = table.get_mut(id).unwrap();
    conn.read_turn(&codec, 1024, limits(100, 16), false, &mut pool, 1, 1);
    let buf = conn.take_inbuf();
    table.close(id);
    let conn = table.get_even_closed_mut(id).unwrap();
    conn.restore_inbuf(buf, 0, &mut pool);
    assert_eq!((conn.queued_messages(), conn.filled), (0, 0));
}

mod output;

/// The handler's state for a connection: put (giving back what was
/// there), taken out (to lend, or for good), and known to be there or not.
#[test]
fn a_connection_keeps_the_handlers_state_until_it_is_taken() {
    let (mut table, id, _peer) = conn_table_with_one();
    let conn = table.get_mut(id).unwrap();
    assert!(!conn.has_state());
    assert!(conn.put_state(Box::new(1u32)).is_none());
    assert!(conn.has_state());
    let old = conn
        .put_state(Box::new("two"))
        .expect("the first state back");
    assert_eq!(old.downcast_ref::<u32>(), Some(&1));
    let taken = conn.take_state().expect("the second state");
    assert_eq!(taken.downcast_ref::<&str>(), Some(&"two"));
    assert!(!conn.has_state());
    assert!(conn.take_state().is_none());
}
