//! Phase work for the embedder's sources: registering their descriptors,
//! and calling a source's callback (or the handler's `on_source`) when its
//! descriptor is ready.

use std::io;
use std::os::unix::io::RawFd;

use super::Core;
use crate::backend::Readiness;
use crate::handler::{Context, Handler};
use crate::token::SourceId;
use crate::Interest;

/// A callback that serves one source (none: the handler's `on_source` does).
pub(crate) type SourceCallback = Box<dyn FnMut(&mut Context<'_>, &Readiness)>;

impl Core {
    pub(crate) fn add_source(
        &mut self,
        fd: RawFd,
        interest: Interest,
        callback: Option<SourceCallback>,
    ) -> io::Result<SourceId> {
        let id = self.sources.next_id();
        self.backend.add(fd, id.token(), interest)?;
        self.sources.insert(id, fd, callback);
        Ok(id)
    }

    /// Deregisters a source (before its descriptor can be closed) and frees
    /// its slot; its id, and any event still queued for it, reach nothing
    /// from now on.
    pub(crate) fn remove_source(&mut self, id: SourceId) -> io::Result<()> {
        let Some((fd, callback)) = self.sources.remove(id) else {
            return Err(io::Error::new(io::ErrorKind::NotFound, "unknown source"));
        };
        // Deregistered while its descriptor is still open: the callback
        // may own it, and goes only now.
        let result = self.backend.delete(fd);
        drop(callback);
        result
    }

    pub(crate) fn on_source<I: 'static, H: Handler<I> + ?Sized>(
        &mut self,
        handler: &mut H,
        id: SourceId,
        event: Readiness,
    ) {
        if !self.sources.contains(id) {
            // Deregistered (earlier in this batch, perhaps), its slot maybe
            // taken by another source: not for anyone now.
            self.stats.stale_events += 1;
            return;
        }
        match self.sources.take_callback(id) {
            Some(mut callback) => {
                self.call_hook(handler, "a source callback", |_, cx| callback(cx, &event));
                // Put it back unless the callback deregistered its source.
                self.sources.restore_callback(id, callback);
            }
            None => {
                self.call_hook(handler, "on_source", |h, cx| h.on_source(cx, id, &event));
            }
        }
        self.run_close_hooks(handler);
    }
}
