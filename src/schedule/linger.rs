//! Lingering close: how a connection the server closes while its peer may
//! still be sending ends without a reset that would destroy its answer.
//!
//! Closing a socket whose receive queue holds unread bytes makes the kernel
//! send RST instead of FIN, and a peer that receives RST may discard what it
//! had not yet read: the error answer to a refused request, the last answer
//! before `Connection: close`. nginx answers this with its lingering close,
//! and so does the loop: once everything owed is written, it shuts its
//! sending side (FIN, after the data), then reads and discards what the peer
//! still sends until the peer closes too, `Config::lingering_close` passes,
//! or the peer has sent a megabyte more; only then does it close the
//! socket.

use std::collections::VecDeque;
use std::time::Instant;

use crate::token::ConnId;

/// The deadlines of lingering connections, in the order they began (all
/// are the same time away, so that is deadline order too).
#[derive(Debug, Default)]
pub(crate) struct LingerDeadlines {
    queue: VecDeque<(Instant, ConnId)>,
}

impl LingerDeadlines {
    pub(crate) fn next_at(&self) -> Option<Instant> {
        self.queue.front().map(|&(at, _)| at)
    }

    /// `id` lingers until `until` (later than every deadline queued).
    pub(crate) fn push(&mut self, until: Instant, id: ConnId) {
        self.queue.push_back((until, id));
    }

    /// The next connection whose lingering ended by `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<ConnId> {
        let &(at, id) = self.queue.front()?;
        if at > now {
            return None;
        }
        self.queue.pop_front();
        Some(id)
    }

    /// The next connection lingering, due or not (a shutdown ends them all).
    pub(crate) fn pop_any(&mut self) -> Option<ConnId> {
        self.queue.pop_front().map(|(_, id)| id)
    }
}
