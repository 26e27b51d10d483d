//! One connection's output: bytes copied into a ring, and shared buffers
//! queued without a copy, written out in the order they were queued.
//!
//! The ring alone is the common case and the fast one: a write of its one
//! or two slices. A shared buffer ([`Bytes`]) joins a list of pieces that
//! says, in order, how many of the ring's bytes come before it and after
//! it; a write then gathers the pieces into one vectored call.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use bytes::{Buf, Bytes};

use super::buffer::{append_to_ring, BufferPool};

/// Most slices one vectored write gathers (a few shared buffers and the
/// runs of the ring between them).
const MAX_SLICES: usize = 16;

/// Room for pieces an empty output keeps.
const KEPT_PIECES: usize = 8;

/// A run of output: bytes of the ring, or a shared buffer.
#[derive(Debug)]
enum Piece {
    Ring(usize),
    Shared(Bytes),
}

#[derive(Debug, Default)]
pub(crate) struct Output {
    /// The copied bytes, in order.
    ring: VecDeque<u8>,
    /// Empty while the output is the ring alone; otherwise all of it, in
    /// order (the `Ring` runs add up to the ring's length). Boxed: most
    /// connections never send a shared buffer, and each holds its
    /// `Output` in its slot.
    pieces: Option<Box<Pieces>>,
}

/// The output in order, when it holds shared buffers.
#[derive(Debug, Default)]
struct Pieces {
    list: VecDeque<Piece>,
    /// Bytes of the shared buffers in `list`.
    shared: usize,
}

impl Output {
    pub(crate) fn len(&self) -> usize {
        self.ring.len() + self.pieces.as_ref().map_or(0, |pieces| pieces.shared)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pieces, if the output holds a shared buffer.
    fn in_pieces(&self) -> Option<&Pieces> {
        self.pieces
            .as_deref()
            .filter(|pieces| !pieces.list.is_empty())
    }

    /// Heap bytes it holds (shared buffers are not its own).
    #[cfg(all(test, unix))]
    pub(crate) fn capacity(&self) -> usize {
        let pieces = self.pieces.as_ref().map_or(0, |pieces| {
            std::mem::size_of::<Pieces>() + pieces.list.capacity() * std::mem::size_of::<Piece>()
        });
        self.ring.capacity() + pieces
    }

    /// Copies `parts` in, after what is queued.
    pub(crate) fn push_copies(&mut self, parts: &[&[u8]], pool: &mut BufferPool) {
        if self.ring.capacity() == 0 {
            self.ring = pool.take_outbound();
        }
        let mut added = 0;
        for part in parts {
            append_to_ring(&mut self.ring, part);
            added += part.len();
        }
        let Some(pieces) = self.pieces.as_mut().filter(|p| !p.list.is_empty()) else {
            return;
        };
        if added == 0 {
            return;
        }
        match pieces.list.back_mut() {
            Some(Piece::Ring(run)) => *run += added,
            _ => pieces.list.push_back(Piece::Ring(added)),
        }
    }

    /// Queues `bytes` after what is queued, without copying it.
    pub(crate) fn push_shared(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        let ring_len = self.ring.len();
        let pieces = self.pieces.get_or_insert_with(Box::default);
        if pieces.list.is_empty() && ring_len > 0 {
            pieces.list.push_back(Piece::Ring(ring_len));
        }
        pieces.shared += bytes.len();
        pieces.list.push_back(Piece::Shared(bytes));
    }

    /// Writes at most `allowed` bytes from the front in one system call.
    pub(crate) fn write_to(&self, socket: &mut impl Write, allowed: usize) -> io::Result<usize> {
        let (front, back) = self.ring.as_slices();
        let Some(pieces) = self.in_pieces() else {
            let front = &front[..front.len().min(allowed)];
            let back = &back[..back.len().min(allowed - front.len())];
            return if back.is_empty() {
                socket.write(front)
            } else {
                // The ring wrapped: both halves in one system call.
                socket.write_vectored(&[IoSlice::new(front), IoSlice::new(back)])
            };
        };
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let mut count = 0;
        let mut left = allowed;
        let mut ring_at = 0;
        'pieces: for piece in &pieces.list {
            match piece {
                Piece::Shared(bytes) => {
                    let take = bytes.len().min(left);
                    slices[count] = IoSlice::new(&bytes[..take]);
                    count += 1;
                    left -= take;
                }
                Piece::Ring(run) => {
                    // A run of the ring may straddle its wrap: two slices.
                    let mut run_left = (*run).min(left);
                    left -= run_left;
                    while run_left > 0 {
                        let (half, at) = if ring_at < front.len() {
                            (front, ring_at)
                        } else {
                            (back, ring_at - front.len())
                        };
                        let take = run_left.min(half.len() - at);
                        slices[count] = IoSlice::new(&half[at..at + take]);
                        count += 1;
                        ring_at += take;
                        run_left -= take;
                        if count == MAX_SLICES {
                            break 'pieces;
                        }
                    }
                }
            }
            if left == 0 || count == MAX_SLICES {
                break;
            }
        }
        socket.write_vectored(&slices[..count])
    }

    /// Offers the whole output, if it is the ring alone and no more than
    /// `allowed` bytes, to `take`, which may keep the ring's buffer and
    /// leave an emptied one in its place (a socket that sends from buffers
    /// it owns). The bytes it took: all or none.
    pub(crate) fn hand_over(
        &mut self,
        allowed: usize,
        take: impl FnOnce(&mut VecDeque<u8>) -> bool,
    ) -> usize {
        let len = self.ring.len();
        if len == 0 || len > allowed || self.in_pieces().is_some() {
            return 0;
        }
        if take(&mut self.ring) {
            debug_assert!(
                self.ring.is_empty(),
                "a buffer taken is replaced by an empty one"
            );
            len
        } else {
            0
        }
    }

    /// Drops the first `written` bytes, which the socket took.
    pub(crate) fn consume(&mut self, mut written: usize) {
        let Some(pieces) = self.pieces.as_mut().filter(|p| !p.list.is_empty()) else {
            self.ring.drain(..written);
            return;
        };
        while written > 0 {
            let Some(piece) = pieces.list.front_mut() else {
                break;
            };
            let done = match piece {
                Piece::Ring(run) => {
                    let take = (*run).min(written);
                    self.ring.drain(..take);
                    *run -= take;
                    written -= take;
                    *run == 0
                }
                Piece::Shared(bytes) => {
                    let take = bytes.len().min(written);
                    bytes.advance(take);
                    pieces.shared -= take;
                    written -= take;
                    bytes.is_empty()
                }
            };
            if done {
                pieces.list.pop_front();
            }
        }
        if pieces.shared == 0 {
            // Back to the ring alone: the fast path again.
            pieces.list.clear();
        }
    }

    /// Gives the ring back to the pool and drops the shared buffers: the
    /// output is written, or no longer wanted.
    pub(crate) fn release(&mut self, pool: &mut BufferPool) {
        self.ring.clear();
        if self.ring.capacity() > 0 {
            pool.give_outbound(std::mem::take(&mut self.ring));
        }
        // A short list is kept (a reply with a shared buffer does not cost
        // an allocation each time); a long one goes, or an idle connection
        // would hold it.
        match &mut self.pieces {
            Some(pieces) if pieces.list.capacity() <= KEPT_PIECES => {
                pieces.list.clear();
                pieces.shared = 0;
            }
            _ => self.pieces = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `write_to` would send, and how the output stands after the
    /// socket took `take` bytes each time, until it is empty.
    fn drain_in_steps(output: &mut Output, take: usize, allowed: usize) -> Vec<u8> {
        let mut sent = Vec::new();
        while !output.is_empty() {
            let mut sink = Vec::new();
            let offered = output.write_to(&mut sink, allowed).unwrap();
            assert!(offered <= allowed);
            let taken = offered.min(take);
            sent.extend_from_slice(&sink[..taken]);
            output.consume(taken);
        }
        sent
    }

    #[test]
    fn copies_and_shared_buffers_go_out_in_the_order_queued() {
        let mut pool = BufferPool::new(1);
        for take in [1, 3, 7, 100] {
            for allowed in [1, 5, 64] {
                let mut output = Output::default();
                output.push_copies(&[b"VALUE k 0 5\r\n"], &mut pool);
                output.push_shared(Bytes::from_static(b"hello"));
                output.push_copies(&[b"\r\n", b"VALUE j"], &mut pool);
                output.push_shared(Bytes::from_static(b""));
                output.push_shared(Bytes::from_static(b" 0 2\r\nhi"));
                output.push_copies(&[b"\r\nEND\r\n"], &mut pool);
                assert_eq!(output.len(), 42);
                let sent = drain_in_steps(&mut output, take, allowed);
                assert_eq!(
                    String::from_utf8(sent).unwrap(),
                    "VALUE k 0 5\r\nhello\r\nVALUE j 0 2\r\nhi\r\nEND\r\n",
                    "take {take}, allowed {allowed}"
                );
                assert!(output.in_pieces().is_none());
                output.release(&mut pool);
            }
        }
    }

    #[test]
    fn a_ring_that_wrapped_is_written_in_order_around_shared_buffers() {
        let mut pool = BufferPool::new(1);
        let mut output = Output {
            ring: VecDeque::with_capacity(8),
            ..Output::default()
        };
        output.push_copies(&[b"abcdef"], &mut pool);
        output.consume(4);
        // The next copy wraps around the ring's end.
        output.push_copies(&[b"ghij"], &mut pool);
        output.push_shared(Bytes::from_static(b"SHARED"));
        output.push_copies(&[b"k"], &mut pool);
        let sent = drain_in_steps(&mut output, 100, 100);
        assert_eq!(sent, b"efghijSHAREDk");
    }

    #[test]
    fn the_ring_alone_needs_no_pieces() {
        let mut pool = BufferPool::new(1);
        let mut output = Output::default();
        output.push_copies(&[b"abc"], &mut pool);
        assert!(
            output.pieces.is_none(),
            "nothing allocated for copies alone"
        );
        output.push_shared(Bytes::from_static(b"d"));
        output.push_copies(&[b"e"], &mut pool);
        assert_eq!(output.in_pieces().map(|p| p.list.len()), Some(3));
        output.consume(4);
        assert!(
            output.in_pieces().is_none(),
            "only ring bytes left: the fast path"
        );
        assert_eq!(output.len(), 1);
    }

    /// One call offers all it is allowed, in order: runs of the ring
    /// around its wrap and shared buffers alike (a write that offered less
    /// would still be correct, only slower, so this is pinned apart).
    #[test]
    fn one_write_offers_everything_allowed() {
        let mut pool = BufferPool::new(1);
        let mut output = Output {
            ring: VecDeque::with_capacity(8),
            ..Output::default()
        };
        assert_eq!(output.ring.capacity(), 8, "the test needs a ring of 8");
        output.push_copies(&[b"abcdef"], &mut pool);
        output.consume(4);
        output.push_copies(&[b"ghij"], &mut pool); // wraps: "ef gh" | "ij"
        assert!(!output.ring.as_slices().1.is_empty(), "wrapped");
        // The ring alone: both halves in one call, or what is allowed.
        let mut sink = Vec::new();
        assert_eq!(output.write_to(&mut sink, 100).unwrap(), 6);
        assert_eq!(sink, b"efghij");
        for allowed in 1..=6 {
            let mut sink = Vec::new();
            assert_eq!(output.write_to(&mut sink, allowed).unwrap(), allowed);
            assert_eq!(sink, &b"efghij"[..allowed]);
        }
        // With shared buffers: the run that straddles the wrap, then the
        // shared one, then the next run, all in one call.
        output.push_shared(Bytes::from_static(b"SHARED"));
        output.push_copies(&[b"k"], &mut pool);
        output.push_copies(&[b"l"], &mut pool); // joins the run before it
        assert_eq!(output.in_pieces().map(|p| p.list.len()), Some(3));
        let mut sink = Vec::new();
        assert_eq!(output.write_to(&mut sink, 100).unwrap(), 14);
        assert_eq!(sink, b"efghijSHAREDkl");
        for allowed in 1..14 {
            let mut sink = Vec::new();
            assert_eq!(output.write_to(&mut sink, allowed).unwrap(), allowed);
            assert_eq!(sink, &b"efghijSHAREDkl"[..allowed]);
        }
    }

    /// A short list of pieces is kept for the next reply; a long one goes
    /// with the output, or an idle connection would hold it.
    #[test]
    fn a_long_list_of_pieces_is_not_kept() {
        let mut pool = BufferPool::new(1);
        let mut output = Output::default();
        output.push_copies(&[b"a"], &mut pool);
        output.push_shared(Bytes::from_static(b"b"));
        output.consume(2);
        output.release(&mut pool);
        assert!(output.pieces.is_some(), "a short list is kept");
        assert_eq!(output.len(), 0);
        for _ in 0..KEPT_PIECES {
            output.push_copies(&[b"c"], &mut pool);
            output.push_shared(Bytes::from_static(b"d"));
        }
        assert!(output.pieces.as_ref().unwrap().list.capacity() > KEPT_PIECES);
        output.release(&mut pool);
        assert!(output.pieces.is_none(), "a long list goes");
        assert_eq!(output.len(), 0);
    }

    #[test]
    fn the_ring_alone_within_the_allowance_is_handed_over_whole_or_not_at_all() {
        let mut pool = BufferPool::new(1);
        let mut output = Output::default();
        let offered = |output: &mut Output, allowed, takes: bool| {
            let mut seen = Vec::new();
            let n = output.hand_over(allowed, |bytes| {
                seen.extend(bytes.iter().copied());
                if takes {
                    *bytes = VecDeque::new();
                }
                takes
            });
            (n, seen)
        };
        assert_eq!(
            offered(&mut output, 64, true),
            (0, vec![]),
            "nothing to hand over"
        );
        output.push_copies(&[b"hello"], &mut pool);
        assert_eq!(
            offered(&mut output, 4, true),
            (0, vec![]),
            "over the allowance"
        );
        assert_eq!(offered(&mut output, 5, false), (0, b"hello".to_vec()));
        assert_eq!(output.len(), 5, "kept when refused");
        assert_eq!(offered(&mut output, 5, true), (5, b"hello".to_vec()));
        assert!(output.is_empty());
        output.push_copies(&[b"a"], &mut pool);
        output.push_shared(Bytes::from_static(b"b"));
        assert_eq!(
            offered(&mut output, 64, true),
            (0, vec![]),
            "not the ring alone"
        );
        assert_eq!(output.len(), 2);
    }
}
