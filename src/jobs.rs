//! Jobs on the worker pool: submitting them without ever blocking the loop,
//! and handing their results over on the loop thread, in submission order
//! when asked.

use std::collections::{BTreeMap, HashMap};
use std::panic::{self, AssertUnwindSafe};

use crate::close::CloseReason;
use crate::core::Core;
use crate::handle::{Command, JobDelivery};
use crate::handler::{Context, Handler};
use crate::token::ConnId;
use crate::workers::{JobRejected, WorkerPool};

/// The worker threads (started with the first job) and the results that
/// wait for earlier ones of the same connection.
#[derive(Default)]
pub(crate) struct Jobs {
    workers: Option<WorkerPool>,
    ordered: HashMap<ConnId, OrderedResults>,
}

impl Jobs {
    /// The connection closed: results still to come for it are dropped.
    pub(crate) fn forget(&mut self, conn: ConnId) {
        self.ordered.remove(&conn);
    }

    /// Lets the workers finish what they hold, then joins them.
    pub(crate) fn stop(&mut self) {
        self.workers = None;
    }
}

#[derive(Default)]
struct OrderedResults {
    /// Sequence number the next ordered job of this connection gets.
    next_seq: u64,
    /// Sequence number whose result is delivered next.
    next_deliver: u64,
    waiting: BTreeMap<u64, JobDelivery>,
}

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
        if self.jobs.workers.is_none() {
            let pool = WorkerPool::start(self.config.workers, self.config.job_queue)
                .map_err(|_| JobRejected::NoWorkers)?;
            self.jobs.workers = Some(pool);
        }
        let order = ordered.then(|| {
            let results = self.jobs.ordered.entry(conn).or_default();
            results.next_seq += 1;
            results.next_seq - 1
        });
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
        let submitted = match &self.jobs.workers {
            Some(pool) => pool.submit(job),
            None => Err(JobRejected::NoWorkers),
        };
        match submitted {
            Ok(()) => {
                self.stats.jobs_submitted += 1;
                Ok(())
            }
            Err(e) => {
                if order.is_some() {
                    // Nothing was queued: give the sequence number back.
                    if let Some(results) = self.jobs.ordered.get_mut(&conn) {
                        results.next_seq -= 1;
                    }
                }
                self.stats.jobs_rejected += 1;
                Err(e)
            }
        }
    }

    pub(crate) fn deliver_job<H: Handler + ?Sized>(
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
        let results = self.jobs.ordered.entry(conn).or_default();
        results.waiting.insert(seq, deliver);
        // Deliver every result whose predecessors have all arrived.
        loop {
            let Some(results) = self.jobs.ordered.get_mut(&conn) else {
                return;
            };
            let next = results.next_deliver;
            let Some(deliver) = results.waiting.remove(&next) else {
                return;
            };
            results.next_deliver += 1;
            self.deliver_one(handler, conn, deliver);
        }
    }

    fn deliver_one<H: Handler + ?Sized>(
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
