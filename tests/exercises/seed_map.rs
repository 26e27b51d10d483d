//! The seed notes, concept by concept. *Exercise:* Python's
//! `threading.Event`: `set`, `clear`, `is_set`, and `wait(timeout)`, which
//! returns `true` as soon as the flag is set, or `false` when the timeout
//! passes first. A `Mutex<bool>` and a `Condvar`.

use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::PATIENCE;

// ANCHOR: solution
#[derive(Default)]
struct Event {
    flag: Mutex<bool>,
    changed: Condvar,
}

impl Event {
    fn set(&self) {
        *self.flag.lock().unwrap() = true;
        self.changed.notify_all(); // every waiter wakes, as in Python
    }

    fn clear(&self) {
        *self.flag.lock().unwrap() = false;
    }

    fn is_set(&self) -> bool {
        *self.flag.lock().unwrap()
    }

    /// `true` once the flag is set; `false` if `timeout` passes first.
    fn wait(&self, timeout: Duration) -> bool {
        let flag = self.flag.lock().unwrap();
        // wait_timeout_while re-checks the flag after every wake-up, so a
        // spurious wake-up does not end the wait early.
        let (flag, _) = self
            .changed
            .wait_timeout_while(flag, timeout, |set| !*set)
            .unwrap();
        *flag
    }
}
// ANCHOR_END: solution

#[test]
fn wait_returns_when_set_and_times_out_when_not() {
    let event = Arc::new(Event::default());
    assert!(!event.wait(Duration::from_millis(30)), "nothing set it");

    let waiter = {
        let event = event.clone();
        thread::spawn(move || {
            let started = Instant::now();
            (event.wait(PATIENCE), started.elapsed())
        })
    };
    thread::sleep(Duration::from_millis(50));
    event.set();
    let (woken, waited) = waiter.join().unwrap();
    assert!(woken, "the waiter saw the flag");
    assert!(waited < PATIENCE, "woken by set, not by the timeout");

    assert!(event.is_set());
    assert!(
        event.wait(Duration::ZERO),
        "an already set flag returns at once"
    );
    event.clear();
    assert!(!event.is_set());
}
