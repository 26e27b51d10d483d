//! Phase work for the worker pool: submitting a job without ever blocking
//! the loop, and handing results over on the loop thread, in submission
//! order when asked.

use std::panic::{self, AssertUnwindSafe};

use crate::close::CloseReason;
use crate::handle::{Command, JobDelivery};
use crate::handler::{Context, Handler};
use crate::reactor::Core;
use crate::remote::JobRejected;
use crate::token::ConnId;

impl Core {
    pub(crate) fn submit<T: Send + 'static>(
        &mut self,
        conn: ConnId,
        ordered: bool,
        work: impl FnOnce() -> T + Send + 'static,
        done: impl FnOnce(&mut Context<'_>, ConnId, T) + Send + 'static,
    ) -> Result<(), JobRejected> {
        if !self.is_open(conn) {
            return Err(JobRejected::Closed);
        }
        let shared = self.handle().map_err(|_| JobRejected::NoWorkers)?.shared;
        self.jobs
            .start(self.config.workers, self.config.job_queue)?;
        let order = ordered.then(|| self.jobs.take_seq(conn));
        let job = Box::new(move || {
            // A panicking job still reports, so that ordered results behind
            // it are not held back forever.
            let deliver: JobDelivery = match panic::catch_unwind(AssertUnwindSafe(work)) {
                Ok(value) => Box::new(move |cx, conn| done(cx, conn, value)),
                Err(_) => Box::new(|_, conn| warn!("a job for {conn} panicked; no result")),
            };
            // A worker may wait for room in the loop's queue; a result is
            // never dropped for want of it.
            let _ = shared.push_waiting(Command::JobDone {
                conn,
                order,
                deliver,
            });
        });
        let submitted = self.jobs.submit(job);
        match submitted {
            Ok(()) => {
                self.stats.jobs_submitted += 1;
                Ok(())
            }
            Err(e) => {
                if order.is_some() {
                    // Nothing was queued: give the sequence number back.
                    self.jobs.return_seq(conn);
                }
                self.stats.jobs_rejected += 1;
                Err(e)
            }
        }
    }

    pub(crate) fn deliver_job<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
        conn: ConnId,
        order: Option<u64>,
        deliver: JobDelivery,
    ) {
        let Some(seq) = order else {
            self.deliver_one(handler, conn, deliver);
            return;
        };
        if !self.is_open(conn) {
            self.stats.jobs_dropped += 1;
            self.jobs.forget(conn);
            return;
        }
        self.jobs.arrived(conn, seq, deliver);
        // Deliver every result whose predecessors have all arrived.
        while let Some(deliver) = self.jobs.next_in_order(conn) {
            self.deliver_one(handler, conn, deliver);
        }
    }

    fn deliver_one<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
        conn: ConnId,
        deliver: JobDelivery,
    ) {
        if !self.is_open(conn) {
            self.stats.jobs_dropped += 1;
            debug!("job result for {conn} dropped: it is closed");
            return;
        }
        self.stats.jobs_done += 1;
        if !self.call_hook(handler, "a job's completion", |_, cx| deliver(cx, conn)) {
            self.close(conn, CloseReason::HandlerPanic);
        }
        self.run_close_hooks(handler);
    }
}
