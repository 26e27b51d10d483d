//! The solution of the exercise of `book/src/seed-flaws.md`, which the book
//! shows folded; `tests/exercises/seed_flaws.rs` holds it to the exercise.

use super::*;

// ANCHOR: solution
pub type Conn = u32;

#[derive(Default)]
pub struct Outbox {
    /// The seed's `message` dict, as queues: answered front first (FIFO).
    pub due: HashMap<Conn, VecDeque<Vec<u8>>>,
    /// The seed's `outputs`: each connection once, however many answers
    /// are due, in the order they became due.
    pub writable: Vec<Conn>,
}

impl Outbox {
    pub fn received(&mut self, conn: Conn, chunk: &[u8]) {
        let queue = self.due.entry(conn).or_default();
        if queue.is_empty() {
            self.writable.push(conn);
        }
        queue.push_back(chunk.to_vec());
    }

    /// The next answer for a writable connection; `None` for one with
    /// nothing due or that has left (the seed's `KeyError`).
    pub fn next_answer(&mut self, conn: Conn) -> Option<Vec<u8>> {
        let queue = self.due.get_mut(&conn)?;
        let chunk = queue.pop_front()?;
        if queue.is_empty() {
            self.due.remove(&conn);
            self.writable.retain(|&c| c != conn);
        }
        Some([b"response: ".as_slice(), &chunk].concat())
    }

    /// The client left: drop what was due to it, and its place in
    /// `writable`, together (the seed forgets the first and not the second).
    pub fn left(&mut self, conn: Conn) {
        self.due.remove(&conn);
        self.writable.retain(|&c| c != conn);
    }

    pub fn writable(&self) -> &[Conn] {
        &self.writable
    }
}
// ANCHOR_END: solution
