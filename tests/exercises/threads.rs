//! Threads. *Exercise:* Python's `JoinableQueue`: `put`, a blocking `get`,
//! `task_done` after each item is processed, and `join`, which returns once
//! every item ever put has been marked done (not merely taken). Build it
//! from a `Mutex` and two `Condvar`s.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

#[cfg(not(feature = "exercises"))]
#[path = "solutions/threads.rs"]
mod answer;
#[cfg(feature = "exercises")]
#[path = "../../exercises/threads.rs"]
mod answer;
use answer::*;

#[test]
fn join_returns_only_once_every_item_is_done() {
    let queue = Arc::new(JoinableQueue::new());
    let processed = Arc::new(AtomicUsize::new(0));
    for _ in 0..4 {
        let (queue, processed) = (queue.clone(), processed.clone());
        // Daemon threads, as the notes' workers: never joined, they end
        // with the process.
        thread::spawn(move || loop {
            let item: u32 = queue.get();
            thread::sleep(Duration::from_millis(1)); // the work
            processed.fetch_add(item as usize, Ordering::SeqCst);
            queue.task_done();
        });
    }
    for _ in 0..400 {
        queue.put(1);
    }
    queue.join();
    // Not "the queue is empty": the last items taken are processed too.
    assert_eq!(processed.load(Ordering::SeqCst), 400);
}
