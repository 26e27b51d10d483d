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
use std::io::{ErrorKind, Read};
use std::net::Shutdown;
use std::time::Instant;

use crate::core::Core;
use crate::state::{Farewell, Lifecycle};
use crate::timer;
use crate::token::ConnId;

/// Bytes a lingering connection may be read and discarded per turn: what
/// a peer still sends is drained without letting one such peer hold the
/// loop (the deadline ends the rest).
const DISCARD_PER_EVENT: usize = 64 * 1024;

/// Bytes a lingering connection may be sent in all before the loop gives
/// up on it: a peer still sending a megabyte after the server said goodbye
/// is not reading what it was told (a request flood, an upload the server
/// refused). Closing then resets it, which is what it has earned, and the
/// loop's work on it stays bounded.
const DISCARD_AT_MOST: usize = 1024 * 1024;

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
}

impl Core {
    /// A graceful close whose output is all written: lingers when the peer
    /// may still be sending, else closes now.
    pub(crate) fn finish_farewell(&mut self, id: ConnId, farewell: Farewell) {
        let linger = self.config.lingering_close;
        // A peer that ended its input sends nothing more: nothing to drain;
        // one that was never written to has no answer a reset could cost.
        let wrote_any = self.conns.get(id).is_some_and(|c| c.wrote_any);
        if linger.is_zero() || farewell == Farewell::PeerClosed || self.shutting_down || !wrote_any
        {
            let reason = self.farewell_reason(id, farewell);
            self.close(id, reason);
            return;
        }
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        // FIN after the last byte of the answer; the peer reads it all.
        let _ = conn.socket.shutdown(Shutdown::Write);
        self.conns.set_lifecycle(id, Lifecycle::Lingering(farewell));
        self.stats.lingered += 1;
        let until = timer::deadline_after(self.now, linger);
        self.lingering.queue.push_back((until, id));
        // What already waits produces no new edge on epoll: drain it now.
        if self.discard_lingering_input(id) {
            self.update_interest(id);
        }
    }

    /// Reads and discards what a lingering connection's peer sent; closes
    /// it once the peer has closed (or failed). Returns whether it is
    /// still lingering.
    pub(crate) fn discard_lingering_input(&mut self, id: ConnId) -> bool {
        let mut scratch = [0u8; 16 * 1024];
        let mut discarded = 0;
        let ended = loop {
            let Some(conn) = self.conns.get_mut(id) else {
                return false;
            };
            if conn.discarded >= DISCARD_AT_MOST {
                break true;
            }
            if discarded >= DISCARD_PER_EVENT {
                // More may wait, and an edge-triggered backend will not say
                // so again: come back next turn, as for a spent read budget.
                self.put_on_ready_list(id);
                break false;
            }
            match conn.socket.read(&mut scratch) {
                Ok(0) => break true,
                Ok(n) => {
                    discarded += n;
                    conn.discarded += n;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break true, // a reset: the peer is gone too
            }
        };
        if ended {
            self.end_lingering(id);
            return false;
        }
        true
    }

    /// Closes a lingering connection with the reason it was closing for.
    fn end_lingering(&mut self, id: ConnId) {
        let farewell = match self.conns.get(id).map(|c| c.state.lifecycle()) {
            Some(Lifecycle::Lingering(farewell)) => farewell,
            _ => return,
        };
        let reason = self.farewell_reason(id, farewell);
        self.close(id, reason);
    }

    /// Closes the connections that lingered past `Config::lingering_close`.
    pub(crate) fn expire_lingering(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.lingering.queue.front() {
            if at > now {
                break;
            }
            self.lingering.queue.pop_front();
            self.end_lingering(id);
        }
    }

    /// During shutdown nothing waits for peers: the lingering close now.
    pub(crate) fn end_all_lingering(&mut self) {
        while let Some((_, id)) = self.lingering.queue.pop_front() {
            self.end_lingering(id);
        }
    }
}
