//! The solution of the exercise of `book/src/threads.md`, which the book
//! shows folded; `tests/exercises/threads.rs` holds it to the exercise.

use super::*;

// ANCHOR: solution
pub struct State<T> {
    pub items: VecDeque<T>,
    /// Put and not yet marked done: taken items count until `task_done`.
    pub unfinished: usize,
}

pub struct JoinableQueue<T> {
    pub state: Mutex<State<T>>,
    pub not_empty: Condvar,
    pub all_done: Condvar,
}

impl<T> JoinableQueue<T> {
    pub fn new() -> JoinableQueue<T> {
        JoinableQueue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                unfinished: 0,
            }),
            not_empty: Condvar::new(),
            all_done: Condvar::new(),
        }
    }

    pub fn put(&self, item: T) {
        let mut state = self.state.lock().unwrap();
        state.items.push_back(item);
        state.unfinished += 1;
        self.not_empty.notify_one();
    }

    /// Blocks until an item is there.
    pub fn get(&self) -> T {
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

    pub fn task_done(&self) {
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
    pub fn join(&self) {
        let mut state = self.state.lock().unwrap();
        while state.unfinished > 0 {
            state = self.all_done.wait(state).unwrap();
        }
    }
}
// ANCHOR_END: solution
