//! The seed notes, concept by concept. *Exercise:* Python's
//! `threading.Event`: `set`, `clear`, `is_set`, and `wait(timeout)`, which
//! returns `true` as soon as the flag is set, or `false` when the timeout
//! passes first. A `Mutex<bool>` and a `Condvar`.

use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::PATIENCE;

#[cfg(not(feature = "exercises"))]
#[path = "solutions/seed_map.rs"]
mod answer;
#[cfg(feature = "exercises")]
#[path = "../../exercises/seed_map.rs"]
mod answer;
use answer::*;

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
