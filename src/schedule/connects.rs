//! The deadlines of outbound connects in progress.

use std::collections::BTreeSet;
use std::time::Instant;

use crate::token::ConnId;

/// Deadlines of the connects in progress, earliest first. A connect that
/// completes, fails or is closed leaves the set at once.
#[derive(Debug, Default)]
pub(crate) struct ConnectDeadlines {
    pending: BTreeSet<(Instant, ConnId)>,
}

impl ConnectDeadlines {
    pub(crate) fn next_at(&self) -> Option<Instant> {
        self.pending.first().map(|&(at, _)| at)
    }

    pub(crate) fn insert(&mut self, deadline: Instant, id: ConnId) {
        self.pending.insert((deadline, id));
    }

    /// The next connect whose deadline passed by `now`, out of the set.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<ConnId> {
        let &(at, id) = self.pending.first()?;
        if at > now {
            return None;
        }
        self.pending.pop_first();
        Some(id)
    }

    pub(crate) fn remove(&mut self, id: ConnId) {
        // Few connects are in flight at once: a scan is cheaper than an
        // index kept beside the set.
        self.pending.retain(|&(_, pending)| pending != id);
    }

    #[cfg(all(test, unix))]
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }
}
