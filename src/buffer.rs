//! Buffers lent to connections while they have bytes in flight.
//!
//! An idle connection holds no buffer at all: one is taken from this pool when
//! bytes arrive (or an answer is queued) and given back once drained. Reuse
//! keeps the steady path free of `malloc`; the cap on the pool and on the size
//! of buffers it keeps bounds what a burst leaves behind.

use std::collections::VecDeque;

use crate::conn::QueuedFrame;

/// A read buffer and the queue of messages cut from it travel together.
type Inbound = (Vec<u8>, VecDeque<QueuedFrame>);

#[derive(Debug)]
pub(crate) struct BufferPool {
    inbound: Vec<Inbound>,
    outbound: Vec<VecDeque<u8>>,
    /// Buffers kept per kind.
    keep: usize,
    /// Size of a new read buffer.
    size: usize,
}

impl BufferPool {
    pub(crate) fn new(keep: usize, size: usize) -> BufferPool {
        BufferPool {
            inbound: Vec::new(),
            outbound: Vec::new(),
            keep,
            size,
        }
    }

    /// A read buffer and an empty message queue. A new buffer is empty:
    /// the connection initialises (zeroes) it as far as its reads need, once;
    /// a pooled one comes back with what it had initialised.
    pub(crate) fn take_inbound(&mut self) -> Inbound {
        self.inbound
            .pop()
            .unwrap_or_else(|| (Vec::with_capacity(1024), VecDeque::new()))
    }

    /// Takes back a read buffer and its (emptied) message queue. Empty
    /// placeholders are ignored, so callers need not check what they hold.
    pub(crate) fn give_inbound(&mut self, buf: Vec<u8>, mut frames: VecDeque<QueuedFrame>) {
        // A buffer grown for one huge message is not worth keeping.
        if self.inbound.len() < self.keep && buf.len() <= 4 * self.size && buf.capacity() > 0 {
            frames.clear();
            self.inbound.push((buf, frames));
        }
    }

    /// A write buffer. New ones start at 1 KiB, enough for the usual
    /// answer; a bigger one grows the ring, and keeps its size in the pool.
    pub(crate) fn take_outbound(&mut self) -> VecDeque<u8> {
        self.outbound
            .pop()
            .unwrap_or_else(|| VecDeque::with_capacity(1024))
    }

    pub(crate) fn give_outbound(&mut self, mut buf: VecDeque<u8>) {
        if self.outbound.len() < self.keep && buf.capacity() <= 4 * self.size && buf.capacity() > 0
        {
            buf.clear();
            self.outbound.push(buf);
        }
    }
}
