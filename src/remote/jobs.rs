//! The worker pool, started with the first job, and the results that wait
//! for earlier ones of the same connection (results delivered in
//! submission order when the handler asked for order).

use std::collections::{BTreeMap, HashMap};

use super::workers::{Job, JobRejected, WorkerPool};
use crate::token::ConnId;

/// The workers and the ordered results waiting for their turn; `D` is what
/// a finished job hands the loop (a closure to run with a context).
pub(crate) struct Jobs<D> {
    workers: Option<WorkerPool>,
    ordered: HashMap<ConnId, OrderedResults<D>>,
}

impl<D> Default for Jobs<D> {
    fn default() -> Jobs<D> {
        Jobs {
            workers: None,
            ordered: HashMap::new(),
        }
    }
}

struct OrderedResults<D> {
    /// Sequence number the next ordered job of this connection gets.
    next_seq: u64,
    /// Sequence number whose result is delivered next.
    next_deliver: u64,
    waiting: BTreeMap<u64, D>,
}

impl<D> Default for OrderedResults<D> {
    fn default() -> OrderedResults<D> {
        OrderedResults {
            next_seq: 0,
            next_deliver: 0,
            waiting: BTreeMap::new(),
        }
    }
}

impl<D> Jobs<D> {
    /// Starts the pool if it is not running yet.
    pub(crate) fn start(&mut self, workers: usize, queue: usize) -> Result<(), JobRejected> {
        if self.workers.is_none() {
            let pool = WorkerPool::start(workers, queue).map_err(|_| JobRejected::NoWorkers)?;
            self.workers = Some(pool);
        }
        Ok(())
    }

    /// The next sequence number of `conn`'s ordered results.
    pub(crate) fn take_seq(&mut self, conn: ConnId) -> u64 {
        let results = self.ordered.entry(conn).or_default();
        results.next_seq += 1;
        results.next_seq - 1
    }

    /// A job was refused after [`take_seq`](Jobs::take_seq): its sequence
    /// number is given back, so that no result waits for it.
    pub(crate) fn return_seq(&mut self, conn: ConnId) {
        if let Some(results) = self.ordered.get_mut(&conn) {
            results.next_seq -= 1;
        }
    }

    /// Hands `job` to a worker without waiting.
    pub(crate) fn submit(&self, job: Job) -> Result<(), JobRejected> {
        match &self.workers {
            Some(pool) => pool.submit(job),
            None => Err(JobRejected::NoWorkers),
        }
    }

    /// Files an ordered result that arrived.
    pub(crate) fn arrived(&mut self, conn: ConnId, seq: u64, deliver: D) {
        self.ordered
            .entry(conn)
            .or_default()
            .waiting
            .insert(seq, deliver);
    }

    /// The next result of `conn` whose predecessors have all been delivered.
    pub(crate) fn next_in_order(&mut self, conn: ConnId) -> Option<D> {
        let results = self.ordered.get_mut(&conn)?;
        let deliver = results.waiting.remove(&results.next_deliver)?;
        results.next_deliver += 1;
        Some(deliver)
    }

    /// The connection closed: results still to come for it are dropped.
    pub(crate) fn forget(&mut self, conn: ConnId) {
        self.ordered.remove(&conn);
    }

    /// Lets the workers finish what they hold, then joins them.
    pub(crate) fn stop(&mut self) {
        self.workers = None;
    }
}
