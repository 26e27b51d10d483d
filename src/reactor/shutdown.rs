//! Graceful shutdown: stop accepting, answer what clients already sent,
//! write out every connection's output, and close each one once drained.

use crate::close::CloseReason;
use crate::conn::List;
use crate::handler::Handler;
use crate::reactor::Core;

impl Core {
    /// Starts a graceful shutdown: listeners closed, every connection read
    /// once more (what clients sent before the shutdown still gets answered).
    pub(crate) fn begin_shutdown(&mut self) {
        self.shutting_down = true;
        self.end_all_lingering();
        self.listeners.close_all(&mut *self.backend);
        for id in self.conns.live_ids() {
            if self
                .conns
                .get(id)
                .is_some_and(|c| c.state().reading().is_active())
            {
                self.put_on_ready_list(id);
            }
        }
    }

    /// During a shutdown: closes every connection that has nothing left to
    /// read, answer or write. A message half received is something left to
    /// read: its connection stays, within the grace, until the rest comes
    /// (and is answered), unless its peer can send nothing more.
    pub(crate) fn close_drained<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
    ) {
        let drained: Vec<_> = self
            .conns
            .iter()
            .filter(|c| {
                let message_on_its_way = c.has_partial_message() && c.state().reading().is_active();
                c.is_open()
                    && !c.has_output()
                    && c.queued_messages() == 0
                    && !c.is_listed(List::Ready)
                    && !c.is_listed(List::Handle)
                    && !message_on_its_way
            })
            .map(|c| c.id())
            .collect();
        for id in drained {
            self.close(id, CloseReason::Shutdown);
        }
        self.run_close_hooks(handler);
    }

    /// Closes every connection still open (the shutdown deadline passed).
    pub(crate) fn close_all<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
    ) {
        for id in self.conns.live_ids() {
            self.close(id, CloseReason::Shutdown);
        }
        self.run_close_hooks(handler);
    }
}
