//! Threads. *Exercise:* Python's `JoinableQueue`: `put`, a blocking `get`,
//! `task_done` after each item is processed, and `join`, which returns once
//! every item ever put has been marked done (not merely taken). Build it
//! from a `Mutex` and two `Condvar`s.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

// ANCHOR: solution
struct State<T> {
    items: VecDeque<T>,
    /// Put and not yet marked done: taken items count until `task_done`.
    unfinished: usize,
}

struct JoinableQueue<T> {
    state: Mutex<State<T>>,
    not_empty: Condvar,
    all_done: Condvar,
}

impl<T> JoinableQueue<T> {
    fn new() -> JoinableQueue<T> {
        JoinableQueue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                unfinished: 0,
            }),
            not_empty: Condvar::new(),
            all_done: Condvar::new(),
        }
    }

    fn put(&self, item: T) {
        let mut state = self.state.lock().unwrap();
        state.items.push_back(item);
        state.unfinished += 1;
        self.not_empty.notify_one();
    }

    /// Blocks until an item is there.
    fn get(&self) -> T {
        let mut state = self.state.lock().unwrap();
        loop {
            // A wait can wake with nothing to take (spurious, or another
            // getter was faster): check again.
            if let Some(item) = state.items.pop_front() {
                return item;
            }
            state = self.not_empty.wait(state).unwrap();
        }
    }

    fn task_done(&self) {
        let mut state = self.state.lock().unwrap();
        state.unfinished = state
            .unfinished
            .checked_sub(1)
            .expect("task_done() called too many times");
        if state.unfinished == 0 {
            self.all_done.notify_all();
        }
    }

    /// Blocks until every item put has been marked done.
    fn join(&self) {
        let mut state = self.state.lock().unwrap();
        while state.unfinished > 0 {
            state = self.all_done.wait(state).unwrap();
        }
    }
}
// ANCHOR_END: solution

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
