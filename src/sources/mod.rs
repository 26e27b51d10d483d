//! The embedder's own descriptors (a pipe, a timerfd, a UDP socket),
//! watched in the same poll as the sockets, with ids that carry a
//! generation as connection ids do.
//!
//! Owns: the table of sources, their generations, and each one's callback
//! (of type `C`, which the loop chooses: this part never calls it); the
//! signal pipe (`signals.rs`), which says which signals came; datagram
//! sockets, their peers' addresses and their send queues (`datagram.rs`).
//!
//! May not touch: connections, the handler, or the backend; registering a
//! source's descriptor is the loop's job, done before the slot is filled.

use crate::sys::RawSource;

#[cfg(windows)]
mod console;
mod datagram;
#[cfg(target_os = "linux")]
mod mmsg;
mod signals;

pub use datagram::DatagramPeer;
pub(crate) use datagram::{Endpoint, RecvBatch, Sent, BATCH};
pub use signals::Signal;
pub(crate) use signals::SignalPipe;

use slab::Slab;

use crate::token::{Generations, SourceId};

struct Source<C> {
    id: SourceId,
    fd: RawSource,
    callback: Option<C>,
    /// On the loop's ready list: served again next turn without an event.
    listed: bool,
}

/// The registered sources, by slot.
pub(crate) struct Sources<C> {
    slab: Slab<Source<C>>,
    generations: Generations,
}

impl<C> Default for Sources<C> {
    fn default() -> Sources<C> {
        Sources {
            slab: Slab::new(),
            generations: Generations::for_sources(),
        }
    }
}

impl<C> Sources<C> {
    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    /// The id the next source will get; [`insert`](Sources::insert) it once
    /// its descriptor is registered under that id's token (a failed
    /// registration leaves nothing behind).
    pub(crate) fn next_id(&self) -> SourceId {
        let slot = self.slab.vacant_key();
        SourceId::new(slot, self.generations.peek_next(slot))
    }

    pub(crate) fn insert(&mut self, id: SourceId, fd: RawSource, callback: Option<C>) {
        debug_assert_eq!(id.slot(), self.slab.vacant_key());
        self.generations.commit(id.slot(), id.generation());
        self.slab.insert(Source {
            id,
            fd,
            callback,
            listed: false,
        });
    }

    /// Forgets a source, returning its descriptor for the caller to
    /// deregister and its callback, to be dropped only after that (a
    /// callback may own the descriptor: dropping it closes it); `None` if
    /// the id is stale.
    pub(crate) fn remove(&mut self, id: SourceId) -> Option<(RawSource, Option<C>)> {
        self.slab.get(id.slot()).filter(|s| s.id == id)?;
        let source = self.slab.remove(id.slot());
        Some((source.fd, source.callback))
    }

    /// Whether any live source's callback is one `wanted` says yes to.
    pub(crate) fn any_callback(&self, wanted: impl Fn(&C) -> bool) -> bool {
        self.slab
            .iter()
            .any(|(_, source)| source.callback.as_ref().is_some_and(&wanted))
    }

    /// Whether `id` names a live source.
    pub(crate) fn contains(&self, id: SourceId) -> bool {
        self.slab.get(id.slot()).is_some_and(|s| s.id == id)
    }

    /// Puts a live source on the ready list: `true` if it was not on it
    /// (the caller pushes its token).
    pub(crate) fn list(&mut self, id: SourceId) -> bool {
        match self.slab.get_mut(id.slot()).filter(|s| s.id == id) {
            Some(source) => !std::mem::replace(&mut source.listed, true),
            None => false,
        }
    }

    /// Takes a source off the ready list to serve it: `false` if it is
    /// gone (deregistered since it was listed).
    pub(crate) fn unlist(&mut self, id: SourceId) -> bool {
        match self.slab.get_mut(id.slot()).filter(|s| s.id == id) {
            Some(source) => {
                source.listed = false;
                true
            }
            None => false,
        }
    }

    /// A source's callback (or whatever the loop keeps for it), in place.
    pub(crate) fn get_mut(&mut self, id: SourceId) -> Option<&mut C> {
        let source = self.slab.get_mut(id.slot()).filter(|s| s.id == id)?;
        source.callback.as_mut()
    }

    /// Lends out a source's callback while it runs (`None` inside: the
    /// handler's `on_source` serves it).
    pub(crate) fn take_callback(&mut self, id: SourceId) -> Option<C> {
        let source = self.slab.get_mut(id.slot()).filter(|s| s.id == id)?;
        source.callback.take()
    }

    /// Puts a callback back, unless its source was removed meanwhile.
    pub(crate) fn restore_callback(&mut self, id: SourceId, callback: C) {
        if let Some(source) = self.slab.get_mut(id.slot()).filter(|s| s.id == id) {
            source.callback = Some(callback);
        }
    }
}
