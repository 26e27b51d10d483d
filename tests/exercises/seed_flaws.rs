//! What goes wrong in the seed. *Exercise:* the seed keeps `outputs` (a
//! list with a socket once per chunk) and `message` (a dict of lists
//! answered with `pop()`), and crashes with `KeyError` when a client leaves
//! with an answer due. Write the bookkeeping right, as one type: answers
//! oldest first, a connection at most once in the writable set, and a
//! departed connection forgotten everywhere.

use std::collections::{HashMap, VecDeque};

#[cfg(not(feature = "exercises"))]
#[path = "solutions/seed_flaws.rs"]
mod answer;
#[cfg(feature = "exercises")]
#[path = "../../exercises/seed_flaws.rs"]
mod answer;
use answer::*;

#[test]
fn answers_come_oldest_first() {
    let mut outbox = Outbox::default();
    outbox.received(7, b"one");
    outbox.received(7, b"two");
    assert_eq!(outbox.next_answer(7).unwrap(), b"response: one");
    assert_eq!(outbox.next_answer(7).unwrap(), b"response: two");
    assert_eq!(outbox.next_answer(7), None);
}

#[test]
fn a_connection_is_writable_once_however_many_answers_are_due() {
    let mut outbox = Outbox::default();
    outbox.received(1, b"a");
    outbox.received(2, b"b");
    outbox.received(1, b"c");
    assert_eq!(outbox.writable(), [1, 2]);
    outbox.next_answer(1);
    assert_eq!(outbox.writable(), [1, 2], "one answer is still due to 1");
    outbox.next_answer(1);
    assert_eq!(outbox.writable(), [2]);
}

#[test]
fn a_client_that_leaves_with_answers_due_is_forgotten_without_a_crash() {
    let mut outbox = Outbox::default();
    outbox.received(3, b"bye");
    outbox.received(4, b"hi");
    outbox.left(3);
    assert_eq!(outbox.writable(), [4]);
    assert_eq!(outbox.next_answer(3), None);
    assert_eq!(outbox.next_answer(4).unwrap(), b"response: hi");
}
