//! The embedder's own descriptors, watched in the same poll as the sockets
//! (`Reactor::register_source`), with ids that carry a generation as
//! connection ids do.

use std::io;
use std::os::unix::io::RawFd;

use slab::Slab;

use crate::backend::Readiness;
use crate::core::Core;
use crate::handler::{Context, Handler};
use crate::token::{Generations, SourceId};
use crate::Interest;

/// A callback that serves one source (none: the handler's `on_source` does).
pub(crate) type SourceCallback = Box<dyn FnMut(&mut Context<'_>, &Readiness)>;

struct Source {
    id: SourceId,
    fd: RawFd,
    callback: Option<SourceCallback>,
}

/// The registered sources, by slot.
pub(crate) struct Sources {
    slab: Slab<Source>,
    generations: Generations,
}

impl Default for Sources {
    fn default() -> Sources {
        Sources {
            slab: Slab::new(),
            generations: Generations::for_sources(),
        }
    }
}

impl Sources {
    fn get_mut(&mut self, id: SourceId) -> Option<&mut Source> {
        self.slab.get_mut(id.slot()).filter(|s| s.id == id)
    }

    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }
}

impl Core {
    pub(crate) fn add_source(
        &mut self,
        fd: RawFd,
        interest: Interest,
        callback: Option<SourceCallback>,
    ) -> io::Result<SourceId> {
        let sources = &mut self.sources;
        let entry = sources.slab.vacant_entry();
        let slot = entry.key();
        let generation = sources.generations.peek_next(slot);
        let id = SourceId::new(slot, generation);
        self.backend.add(fd, id.token(), interest)?;
        sources.generations.commit(slot, generation);
        entry.insert(Source { id, fd, callback });
        Ok(id)
    }

    /// Deregisters a source (before its descriptor can be closed) and frees
    /// its slot; its id, and any event still queued for it, reach nothing
    /// from now on.
    pub(crate) fn remove_source(&mut self, id: SourceId) -> io::Result<()> {
        let Some(source) = self.sources.get_mut(id) else {
            return Err(io::Error::new(io::ErrorKind::NotFound, "unknown source"));
        };
        let result = self.backend.delete(source.fd);
        self.sources.slab.remove(id.slot());
        result
    }

    pub(crate) fn on_source<H: Handler + ?Sized>(
        &mut self,
        handler: &mut H,
        id: SourceId,
        event: Readiness,
    ) {
        let Some(source) = self.sources.get_mut(id) else {
            // Deregistered (earlier in this batch, perhaps), its slot maybe
            // taken by another source: not for anyone now.
            self.stats.stale_events += 1;
            return;
        };
        match source.callback.take() {
            Some(mut callback) => {
                self.call_hook(handler, "a source callback", |_, cx| callback(cx, &event));
                // Put it back unless the callback deregistered its source.
                if let Some(source) = self.sources.get_mut(id) {
                    source.callback = Some(callback);
                }
            }
            None => {
                self.call_hook(handler, "on_source", |h, cx| h.on_source(cx, id, &event));
            }
        }
        self.run_close_hooks(handler);
    }
}
