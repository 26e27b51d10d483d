//! The worker pool: threads for work that must not run on the loop (blocking
//! calls, heavy computation), libuv's `uv_queue_work` and tokio's
//! `spawn_blocking`.
//!
//! A job runs on a worker; its result comes back to the loop thread through
//! the same channel and wake-up as a [`Handle`](crate::Handle)'s commands,
//! and is delivered with the connection it belongs to. The queue of jobs not
//! yet started is bounded: when it is full, submitting fails at once
//! (backpressure) instead of blocking the loop.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};

pub(crate) type Job = Box<dyn FnOnce() + Send>;

pub(crate) struct WorkerPool {
    jobs: Option<mpsc::SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPool")
            .field("workers", &self.workers.len())
            .finish()
    }
}

/// Why a job was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobRejected {
    /// The queue of waiting jobs is full
    /// ([`Config::job_queue`](crate::Config::job_queue)); try later or shed load.
    QueueFull,
    /// The connection the job was for is closed.
    Closed,
    /// The worker threads could not be started.
    NoWorkers,
}

impl fmt::Display for JobRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobRejected::QueueFull => "the worker pool's queue is full",
            JobRejected::Closed => "the connection is closed",
            JobRejected::NoWorkers => "the worker threads could not be started",
        })
    }
}

impl std::error::Error for JobRejected {}

impl WorkerPool {
    pub(crate) fn start(workers: usize, queue: usize) -> std::io::Result<WorkerPool> {
        let (sender, receiver) = mpsc::sync_channel::<Job>(queue.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        let mut pool = WorkerPool {
            jobs: Some(sender),
            workers: Vec::new(),
        };
        for n in 0..workers.max(1) {
            let receiver = receiver.clone();
            let worker = thread::Builder::new()
                .name(format!("selectloop-worker-{n}"))
                .spawn(move || loop {
                    // The lock is held only to take one job, not to run it.
                    let job = match receiver.lock() {
                        Ok(receiver) => receiver.recv(),
                        Err(_) => return,
                    };
                    match job {
                        // A panicking job must not take its worker with it.
                        Ok(job) => {
                            let _ = panic::catch_unwind(AssertUnwindSafe(job));
                        }
                        Err(_) => return, // the pool is shutting down
                    }
                })?;
            pool.workers.push(worker);
        }
        Ok(pool)
    }

    pub(crate) fn submit(&self, job: Job) -> Result<(), JobRejected> {
        let jobs = self.jobs.as_ref().ok_or(JobRejected::NoWorkers)?;
        jobs.try_send(job).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => JobRejected::QueueFull,
            mpsc::TrySendError::Disconnected(_) => JobRejected::NoWorkers,
        })
    }
}

impl Drop for WorkerPool {
    /// Lets the workers finish the jobs queued, then joins them.
    fn drop(&mut self) {
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}
