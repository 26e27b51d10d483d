//! Unit tests of a connection's output and its other loop-facing rules:
//! the backlog limit, the watermarks, the write budget, the lists, the
//! lingering discard, the interest it wants, its socket error.

use std::time::Duration;

use super::super::buffer::BufferPool;
use super::super::conn::QueuedFrame;
use super::super::turn::Outgoing;
use super::{conn_table_with_one, fd_of, limits, send};
use crate::codec::{Codec, Lines};

/// Resets the connection from the peer's side (`SO_LINGER` 0, then close)
/// and waits until the server's end `fd` has heard of it.
fn reset_and_wait(peer: std::net::TcpStream, fd: std::os::unix::io::RawFd) {
    socket2::SockRef::from(&peer)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(peer);
    let mut poll_fd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd, valid for the duration of the call.
    assert_eq!(unsafe { libc::poll(&mut poll_fd, 1, 5_000) }, 1);
}

/// The output limit is on the backlog of earlier turns, not on what this
/// turn queues; the high watermark marks the pressure; a flush stops at
/// its budget, and falling under the low watermark relieves the pressure
/// (and resumes handling if it was paused).
#[test]
fn output_backlog_watermarks_and_the_write_budget() {
    let (mut table, id, mut peer) = conn_table_with_one();
    let mut pool = BufferPool::new(4);
    let conn = table.get_mut(id).unwrap();
    let (max_output, high, low) = (50, 60, 10);
    // One turn may queue past the limit: nothing was left from before.
    conn.queue_output(
        Outgoing::Copies(&[&[b'x'; 40], &[b'y'; 60]]),
        &mut pool,
        1,
        max_output,
        high,
    )
    .unwrap();
    conn.queue_output(
        Outgoing::Copies(&[&[b'z'; 20]]),
        &mut pool,
        1,
        max_output,
        high,
    )
    .unwrap();
    assert_eq!(conn.output_len(), 120);
    // The next turn, with 120 bytes still unread: past the limit.
    let refused = conn.queue_output(Outgoing::Copies(&[b"more"]), &mut pool, 2, max_output, high);
    assert!(
        matches!(refused, Err(super::super::Backlog(120))),
        "{refused:?}"
    );
    assert_eq!(conn.output_len(), 120, "nothing queued when refused");
    // Handling pauses while the output is past the high watermark.
    conn.frames.push_back(QueuedFrame {
        start: 0,
        end: 1,
        next: 1,
        message: true,
    });
    assert!(conn.next_message(high).is_none());
    assert_eq!(conn.queued_messages(), 1);
    let codec = Codec::from(Lines::new(16));
    let report = conn.read_turn(&codec, 1024, limits(100, 16), false, &mut pool, 2, 4_000);
    assert!(report.handling_paused, "a read reports that handling waits");
    // (That read found nothing and gave the empty buffer back with its
    // queue, where the hand-made message above went: put it back.)
    conn.frames.push_back(QueuedFrame {
        start: 0,
        end: 1,
        next: 1,
        message: true,
    });
    // A flush of 30 bytes: still above the low watermark.
    let report = conn.flush_turn(&mut pool, 30, low, 5_000);
    assert!(
        matches!(report.end, super::super::FlushEnd::BudgetSpent),
        "{:?}",
        report.end
    );
    assert_eq!((report.bytes, report.relieved), (30, false));
    assert!(conn.wrote_any());
    assert_eq!(conn.last_progress_ms, 5_000);
    // The rest: empty, relieved, and handling resumes.
    let report = conn.flush_turn(&mut pool, 1 << 20, low, 6_000);
    assert!(
        matches!(report.end, super::super::FlushEnd::Empty),
        "{:?}",
        report.end
    );
    assert_eq!(report.bytes, 90);
    assert!(report.relieved && report.resume_handling);
    assert!(conn.next_message(high).is_some());
    // Queued under the high watermark: no pressure, nothing to relieve.
    conn.queue_output(
        Outgoing::Copies(&[b"small"]),
        &mut pool,
        3,
        max_output,
        high,
    )
    .unwrap();
    let report = conn.flush_turn(&mut pool, 1 << 20, low, 7_000);
    assert!(!report.relieved && !report.resume_handling);
    let mut got = vec![0u8; 125];
    std::io::Read::read_exact(&mut peer, &mut got).unwrap();
    assert_eq!(&got[..40], &[b'x'; 40]);
    assert_eq!(&got[120..], b"small");
}

/// A connection is on each of the turn's lists at most once.
#[test]
fn a_connection_is_listed_once_per_list() {
    use super::super::List;
    let (mut table, id, _peer) = conn_table_with_one();
    let conn = table.get_mut(id).unwrap();
    for list in [List::Ready, List::Handle, List::Flush] {
        assert!(!conn.is_listed(list));
        assert!(conn.list(list), "{list:?}: first time");
        assert!(!conn.list(list), "{list:?}: already on it");
        assert!(conn.is_listed(list));
    }
    conn.unlist(List::Handle);
    assert!(conn.is_listed(List::Ready) && !conn.is_listed(List::Handle));
    assert!(conn.is_listed(List::Flush));
    assert!(conn.read_this_turn(99), "listed to be read again");
}

/// A lingering connection's discarding: a share per event, a cap in all,
/// and the peer's close ends it.
#[test]
fn discarding_stops_at_its_share_its_cap_and_the_peer_s_close() {
    use super::super::Discarded;
    let (mut table, id, mut peer) = conn_table_with_one();
    let fd = fd_of(&table, id);
    send(&mut peer, fd, &[7u8; 100]);
    let conn = table.get_mut(id).unwrap();
    assert_eq!(conn.discard_incoming(10, 1000), Discarded::Budget);
    assert_eq!(conn.discard_incoming(10, 1000), Discarded::Blocked);
    send(&mut peer, fd, &[7u8; 100]);
    let conn = table.get_mut(id).unwrap();
    assert_eq!(
        conn.discard_incoming(1000, 150),
        Discarded::Ended,
        "past the cap"
    );
    let (mut table, id, peer) = conn_table_with_one();
    drop(peer);
    let conn = table.get_mut(id).unwrap();
    let mut ended = Discarded::Blocked;
    for _ in 0..5_000 {
        ended = conn.discard_incoming(1000, 1000);
        if ended != Discarded::Blocked {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(ended, Discarded::Ended, "the peer closed");
    // A peer that resets: the read fails, and that ends it too.
    let (mut table, id, peer) = conn_table_with_one();
    // Once the reset has arrived, the very next read reports it.
    reset_and_wait(peer, fd_of(&table, id));
    let conn = table.get_mut(id).unwrap();
    assert_eq!(
        conn.discard_incoming(1000, 1000),
        Discarded::Ended,
        "the peer reset"
    );
}

/// What a connection closing at once gives up: its input and its output,
/// both buffers back to the pool.
#[test]
fn discarding_returns_both_buffers() {
    let (mut table, id, mut peer) = conn_table_with_one();
    let fd = fd_of(&table, id);
    let codec = Codec::from(Lines::new(16));
    let mut pool = BufferPool::new(4);
    send(&mut peer, fd, b"ab\ncd");
    let conn = table.get_mut(id).unwrap();
    conn.read_turn(&codec, 1024, limits(100, 16), false, &mut pool, 1, 1);
    conn.queue(&[b"answer"], &mut pool);
    assert!(conn.has_output() && conn.heap_bytes() > 0);
    conn.discard_input(&mut pool);
    assert!(!conn.has_partial_message());
    assert_eq!(pool.pooled().0, 1, "the read buffer is back");
    conn.discard_output(&mut pool);
    assert!(!conn.has_output());
    assert_eq!(conn.output_len(), 0);
    assert_eq!(pool.pooled().1, 1, "the write buffer is back");
    assert_eq!(conn.heap_bytes(), 0);
}

/// The registration follows the state: READABLE while reading (or
/// lingering), WRITABLE while waiting for room or for a connect, both, or
/// none.
#[test]
fn the_interest_wanted_follows_reading_and_writing() {
    use super::super::{ReadEvent, WriteEvent};
    use crate::Interest;
    let (mut table, id, _peer) = conn_table_with_one();
    assert_eq!(
        table.get(id).unwrap().wanted_interest(),
        Some(Interest::READABLE)
    );
    table.write_event(id, WriteEvent::Queued);
    table.write_event(id, WriteEvent::Blocked);
    assert_eq!(
        table.get(id).unwrap().wanted_interest(),
        Some(Interest::READABLE | Interest::WRITABLE)
    );
    table.read_event(id, ReadEvent::InputEnded);
    assert_eq!(
        table.get(id).unwrap().wanted_interest(),
        Some(Interest::WRITABLE)
    );
    table.write_event(id, WriteEvent::Drained);
    assert_eq!(table.get(id).unwrap().wanted_interest(), None);
}

/// The watermark's edges: exactly `high` bytes queued is not above it; a
/// flush that writes nothing moves no clock and counts as no write; a
/// queue past `high` while handling is paused keeps it paused.
#[test]
fn the_watermark_and_the_clocks_at_their_edges() {
    let (mut table, id, _peer) = conn_table_with_one();
    let mut pool = BufferPool::new(4);
    let conn = table.get_mut(id).unwrap();
    conn.last_progress_ms = 100;
    let report = conn.flush_turn(&mut pool, 1024, 10, 200);
    assert!(matches!(report.end, super::super::FlushEnd::Empty));
    assert_eq!(report.bytes, 0);
    assert!(!conn.wrote_any(), "nothing was written");
    assert_eq!(conn.last_progress_ms, 100, "no byte moved");
    conn.queue_output(
        Outgoing::Copies(&[&[b'x'; 60]]),
        &mut pool,
        1,
        usize::MAX,
        60,
    )
    .unwrap();
    let report = conn.flush_turn(&mut pool, 1024, 10, 300);
    assert!(
        !report.relieved,
        "60 bytes is not above a high watermark of 60"
    );
    conn.queue_output(
        Outgoing::Copies(&[&[b'x'; 61]]),
        &mut pool,
        2,
        usize::MAX,
        60,
    )
    .unwrap();
    conn.frames.push_back(QueuedFrame {
        start: 0,
        end: 1,
        next: 1,
        message: true,
    });
    assert!(conn.next_message(60).is_none(), "above it: handling pauses");
    conn.queue_output(Outgoing::Copies(&[b"more"]), &mut pool, 2, usize::MAX, 60)
        .unwrap();
    let report = conn.flush_turn(&mut pool, 1024, 10, 400);
    assert!(
        report.relieved && report.resume_handling,
        "still paused when more was queued: resumed once drained"
    );
}

/// An error event's cause is read from the socket (`SO_ERROR`): a reset
/// peer reads as a reset, a healthy socket as nothing.
#[test]
fn a_socket_error_is_taken_from_the_socket() {
    let (table, id, peer) = conn_table_with_one();
    assert!(matches!(table.get(id).unwrap().take_error(), Ok(None)));
    reset_and_wait(peer, fd_of(&table, id));
    let error = table.get(id).unwrap().take_error().unwrap();
    assert_eq!(
        error.map(|e| e.kind()),
        Some(std::io::ErrorKind::ConnectionReset)
    );
}

/// Writing to a peer that reset fails, and says so: the connection is
/// closed for it, nothing loops.
#[test]
fn a_flush_to_a_reset_peer_fails() {
    let (mut table, id, peer) = conn_table_with_one();
    socket2::SockRef::from(&peer)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(peer);
    let mut pool = BufferPool::new(4);
    let mut failed = false;
    for _ in 0..5_000 {
        let conn = table.get_mut(id).unwrap();
        conn.queue(&[b"into the void"], &mut pool);
        if let super::super::FlushEnd::Failed(_) = conn.flush(&mut pool, 1024).1 {
            failed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(failed, "writes to a reset peer never failed");
}

/// The small records the loop keeps on a connection: why its input was
/// refused (until it closes for that), its registration, and a backlog of
/// exactly the output limit, which is still allowed.
#[test]
fn refusal_registration_and_the_output_limit_at_its_edge() {
    use crate::codec::DecodeError;
    use crate::limits::Timeouts;
    use crate::Interest;
    let (mut table, id, _peer) = conn_table_with_one();
    let mut pool = BufferPool::new(4);
    let conn = table.get_mut(id).unwrap();
    assert!(conn.take_refusal().is_none());
    conn.set_refusal(Box::new(DecodeError::invalid("bad")));
    assert!(matches!(
        conn.take_refusal().as_deref(),
        Some(DecodeError::Invalid(_))
    ));
    assert!(conn.take_refusal().is_none(), "taken once");
    conn.set_up(Interest::READABLE, 5, Timeouts::new(None, None));
    assert_eq!(conn.interest(), Some(Interest::READABLE));
    assert_eq!(conn.take_interest(), Some(Interest::READABLE));
    assert_eq!(conn.interest(), None);
    // 50 bytes left from turn 1 against a limit of 50: not past it.
    conn.queue_output(
        Outgoing::Copies(&[&[b'x'; 50]]),
        &mut pool,
        1,
        50,
        usize::MAX,
    )
    .unwrap();
    conn.queue_output(Outgoing::Copies(&[b"y"]), &mut pool, 2, 50, usize::MAX)
        .expect("a backlog of exactly the limit is allowed");
    assert!(conn
        .queue_output(Outgoing::Copies(&[b"z"]), &mut pool, 3, 50, usize::MAX)
        .is_err());
}

/// Pressure without paused handling is relieved without resuming
/// anything; the registration and the timeouts read back as set; a shut
/// sending side reaches the peer as end of stream.
#[test]
fn relief_registration_timeouts_and_shutting_the_sending_side() {
    use crate::Interest;
    use std::io::Read;
    let (mut table, id, mut peer) = conn_table_with_one();
    let mut pool = BufferPool::new(4);
    let conn = table.get_mut(id).unwrap();
    conn.queue_output(
        Outgoing::Copies(&[&[b'x'; 100]]),
        &mut pool,
        1,
        usize::MAX,
        50,
    )
    .unwrap();
    let report = conn.flush_turn(&mut pool, 1024, 10, 1);
    assert!(report.relieved, "above the high watermark, then drained");
    assert!(!report.resume_handling, "nothing was held back");
    conn.set_interest(Some(Interest::WRITABLE));
    assert_eq!(conn.interest(), Some(Interest::WRITABLE));
    let now = conn.change_timeouts(|t| t.idle_ms = 1234);
    assert_eq!(now.idle_ms, 1234);
    assert_eq!(conn.change_timeouts(|t| t.message_ms = 9).message_ms, 9);
    assert_eq!(conn.change_timeouts(|_| {}).idle_ms, 1234, "kept");
    conn.shut_write();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = [0u8; 200];
    let mut total = 0;
    loop {
        let n = peer
            .read(&mut got[total..])
            .expect("end of stream within 5 s");
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, 100, "the answer, then end of stream");
}
