//! Phase work for lingering closes (see `schedule/linger.rs` for why):
//! shutting the sending side, discarding what the peer still sends, and
//! closing once it is done or its deadline passed.

use std::time::Instant;

use crate::conn::{Discarded, Farewell, Lifecycle};
use crate::reactor::Core;
use crate::schedule::deadline_after;
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

impl Core {
    /// A graceful close whose output is all written: lingers when the peer
    /// may still be sending, else closes now.
    pub(crate) fn finish_farewell(&mut self, id: ConnId, farewell: Farewell) {
        let linger = self.config.lingering_close;
        // A peer that ended its input sends nothing more: nothing to drain;
        // one that was never written to has no answer a reset could cost.
        let wrote_any = self.conns.get(id).is_some_and(|c| c.wrote_any());
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
        conn.shut_write();
        self.conns.set_lifecycle(id, Lifecycle::Lingering(farewell));
        self.stats.lingered += 1;
        let until = deadline_after(self.now, linger);
        self.lingering.push(until, id);
        // What already waits produces no new edge on epoll: drain it now.
        if self.discard_lingering_input(id) {
            self.update_interest(id);
        }
    }

    /// Reads and discards what a lingering connection's peer sent; closes
    /// it once the peer has closed (or failed). Returns whether it is
    /// still lingering.
    pub(crate) fn discard_lingering_input(&mut self, id: ConnId) -> bool {
        let Some(conn) = self.conns.get_mut(id) else {
            return false;
        };
        match conn.discard_incoming(DISCARD_PER_EVENT, DISCARD_AT_MOST) {
            Discarded::Blocked => true,
            Discarded::Budget => {
                // More may wait, and an edge-triggered backend will not say
                // so again: come back next turn, as for a spent read budget.
                self.put_on_ready_list(id);
                true
            }
            Discarded::Ended => {
                self.end_lingering(id);
                false
            }
        }
    }

    /// Closes a lingering connection with the reason it was closing for.
    fn end_lingering(&mut self, id: ConnId) {
        let farewell = match self.conns.get(id).map(|c| c.state().lifecycle()) {
            Some(Lifecycle::Lingering(farewell)) => farewell,
            _ => return,
        };
        let reason = self.farewell_reason(id, farewell);
        self.close(id, reason);
    }

    /// Closes the connections that lingered past `Config::lingering_close`.
    pub(crate) fn expire_lingering(&mut self, now: Instant) {
        while let Some(id) = self.lingering.pop_due(now) {
            self.end_lingering(id);
        }
    }

    /// During shutdown nothing waits for peers: the lingering close now.
    pub(crate) fn end_all_lingering(&mut self) {
        while let Some(id) = self.lingering.pop_any() {
            self.end_lingering(id);
        }
    }
}
