//! The seed notes' threading chapter in Rust: each of its tools (`Lock`,
//! `RLock`, `BoundedSemaphore`, `Condition`, `Timer`, `Queue`, `LifoQueue`,
//! `PriorityQueue`, daemon threads and `join`) next to its std counterpart,
//! run on real threads. `Event` and `JoinableQueue` are the book's
//! exercises (tests/exercises/).
//!
//! ```text
//! cargo run --example threads_and_queues
//! ```
//!
//! Each part checks its own result and prints one line; the program exits
//! with an error if one is wrong. No sleeps of a second as in the notes:
//! what each shows does not depend on timing.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

mod common;

// ANCHOR: lock
/// The notes' `NUM = 10` taken down by ten threads, one each. In Python,
/// without `lock.acquire()` the decrements can interleave; in Rust, a
/// shared `i32` that threads mutate without a `Mutex` does not compile.
fn lock() -> i32 {
    let num = Arc::new(Mutex::new(10));
    let threads: Vec<_> = (0..10)
        .map(|_| {
            let num = Arc::clone(&num);
            thread::spawn(move || {
                let mut num = num.lock().unwrap(); // l.acquire()
                *num -= 1;
            }) // the guard drops here: l.release(), even on a panic
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let left = *num.lock().unwrap();
    left
}
// ANCHOR_END: lock

// ANCHOR: rlock
/// `RLock` lets the thread that holds it acquire it again, for a function
/// that locks calling another that locks. std's `Mutex` is not re-entrant
/// (a second `lock` on the same thread never returns); the Rust way is to lock once
/// and hand the inner function the data itself, `&mut`, so it needs no lock.
fn rlock() -> i32 {
    fn take_one(num: &mut i32) {
        *num -= 1; // no lock here: the caller's guard covers it
    }
    let num = Mutex::new(10);
    let mut guard = num.lock().unwrap();
    take_one(&mut guard);
    take_one(&mut guard);
    *guard
}
// ANCHOR_END: rlock

// ANCHOR: semaphore
/// `BoundedSemaphore(2)`: at most two threads inside at once. A bounded
/// channel holding two tokens is one: take a token to enter, give it back
/// on leaving.
fn semaphore() -> usize {
    let (give_back, take) = mpsc::sync_channel::<()>(2);
    give_back.send(()).unwrap();
    give_back.send(()).unwrap();
    let take = Arc::new(Mutex::new(take));
    let inside = Arc::new(AtomicUsize::new(0));
    let most_inside = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..10)
        .map(|_| {
            let (take, give_back) = (Arc::clone(&take), give_back.clone());
            let (inside, most_inside) = (Arc::clone(&inside), Arc::clone(&most_inside));
            thread::spawn(move || {
                take.lock().unwrap().recv().unwrap(); // acquire
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most_inside.fetch_max(now, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(5)); // the work
                inside.fetch_sub(1, Ordering::SeqCst);
                give_back.send(()).unwrap(); // release
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    most_inside.load(Ordering::SeqCst)
}
// ANCHOR_END: semaphore

// ANCHOR: condition
/// `Condition` with `notify(n)`: ten threads wait; the main thread lets
/// three through, then the rest. A `Condvar` wakes waiters; what they wait
/// for (here, passes handed out) lives in the `Mutex` beside it, and each
/// waiter checks it again after waking, because a wake-up alone proves
/// nothing (it may be spurious, or another thread took the pass first).
fn condition() -> (usize, usize) {
    let passes = Arc::new((Mutex::new(0usize), Condvar::new()));
    let through = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..10)
        .map(|_| {
            let (passes, through) = (Arc::clone(&passes), Arc::clone(&through));
            thread::spawn(move || {
                let (count, changed) = &*passes;
                let mut count = changed
                    .wait_while(count.lock().unwrap(), |n| *n == 0)
                    .unwrap();
                *count -= 1;
                through.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    let release = |n: usize| {
        let (count, changed) = &*passes;
        *count.lock().unwrap() += n;
        changed.notify_all();
    };
    release(3); // c.notify(3)
    let deadline = Instant::now() + Duration::from_secs(10);
    while through.load(Ordering::SeqCst) < 3 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    thread::sleep(Duration::from_millis(20)); // room for a fourth, if the passes leaked
    let after_three = through.load(Ordering::SeqCst);
    release(7);
    for t in threads {
        t.join().unwrap();
    }
    (after_three, through.load(Ordering::SeqCst))
}
// ANCHOR_END: condition

// ANCHOR: timer
/// `threading.Timer(0.05, hello)`: a thread that sleeps, then calls. Inside
/// a reactor, use `Context::set_timer` instead: no thread, and the callback
/// runs on the loop thread with the connections at hand.
fn timer() -> Duration {
    let started = Instant::now();
    let (done, fired) = mpsc::channel();
    thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        done.send(started.elapsed()).unwrap(); // hello()
    });
    fired.recv().unwrap()
}
// ANCHOR_END: timer

// ANCHOR: queues
/// `queue.Queue(maxsize=2)` between a producer and a consumer: a
/// `sync_channel(2)`. The producer blocks when two items wait, as `put`
/// does; dropping the sender ends the consumer's loop (no sentinel needed).
fn queue() -> Vec<u32> {
    let (put, get) = mpsc::sync_channel(2);
    let producer = thread::spawn(move || {
        for item in 1..=5 {
            put.send(item).unwrap();
        }
    });
    let received: Vec<u32> = get.iter().collect(); // FIFO
    producer.join().unwrap();
    received
}

/// `LifoQueue`: a stack behind a lock; the newest item comes out first.
fn lifo_queue() -> Vec<u32> {
    let stack = Mutex::new(vec![1, 2, 3]);
    let mut out = Vec::new();
    while let Some(item) = stack.lock().unwrap().pop() {
        out.push(item);
    }
    out
}

/// `PriorityQueue`: `put((priority, item))`, the lowest priority first. A
/// `BinaryHeap` gives the largest first, so wrap the entries in `Reverse`.
fn priority_queue() -> Vec<&'static str> {
    let heap = Mutex::new(BinaryHeap::new());
    for entry in [(3, "low"), (1, "urgent"), (2, "normal")] {
        heap.lock().unwrap().push(Reverse(entry));
    }
    let mut out = Vec::new();
    while let Some(Reverse((_, item))) = heap.lock().unwrap().pop() {
        out.push(item);
    }
    out
}
// ANCHOR_END: queues

// ANCHOR: daemon
/// `t.join()` waits for a thread and, in Rust, returns what it returned (or
/// its panic, as an `Err`). `t.setDaemon(True)` means "do not wait for it at
/// exit": a thread never joined is that, since a Rust process ends when
/// `main` returns, whatever its other threads are doing.
fn daemon_and_join() -> u64 {
    let _daemon = thread::spawn(|| loop {
        thread::sleep(Duration::from_secs(3600)); // ends with the process
    });
    let worker = thread::spawn(|| (1..=100u64).sum::<u64>());
    worker.join().expect("the worker panicked")
}
// ANCHOR_END: daemon

const USAGE: &str = "\
usage: threads_and_queues

Runs the seed notes' threading tools (locks, semaphores, conditions,
timers, queues, daemon threads) beside their Rust counterparts, each
checking its own result. Takes no arguments.
  -h, --help   this text
";

fn main() -> Result<(), String> {
    common::no_arguments("threads_and_queues", USAGE);
    let check = |ok: bool, line: String| {
        println!("{line}");
        if ok {
            Ok(())
        } else {
            Err(format!("unexpected: {line}"))
        }
    };
    let left = lock();
    check(
        left == 0,
        format!("Lock: ten threads took one each from 10, leaving {left}"),
    )?;
    let left = rlock();
    check(
        left == 8,
        format!("RLock: two nested decrements under one guard, leaving {left}"),
    )?;
    let most = semaphore();
    check(
        most <= 2,
        format!("BoundedSemaphore(2): at most {most} threads inside at once"),
    )?;
    let (after_three, all) = condition();
    check(
        after_three == 3 && all == 10,
        format!("Condition: notify(3) let {after_three} through, then all {all}"),
    )?;
    let waited = timer();
    check(
        waited >= Duration::from_millis(50),
        format!("Timer(0.05): fired after {} ms", waited.as_millis()),
    )?;
    let fifo = queue();
    check(
        fifo == [1, 2, 3, 4, 5],
        format!("Queue(maxsize=2): {fifo:?}"),
    )?;
    let lifo = lifo_queue();
    check(lifo == [3, 2, 1], format!("LifoQueue: {lifo:?}"))?;
    let by_priority = priority_queue();
    check(
        by_priority == ["urgent", "normal", "low"],
        format!("PriorityQueue: {by_priority:?}"),
    )?;
    let sum = daemon_and_join();
    check(
        sum == 5050,
        format!("join: the worker returned {sum}; the daemon thread is left to the exit"),
    )?;
    Ok(())
}
