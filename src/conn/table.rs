//! The connection table: the slab of connections, the generations that make
//! their ids unique, the frees deferred to the end of a turn, and the state
//! transitions, with the seed's `inputs` and `outputs` figures kept inside
//! them so that they cannot drift.
//!
//! Nothing outside this module changes a connection's [`Lifecycle`],
//! [`Reading`] or [`Writing`]: the fields are private to [`ConnState`], and
//! every change goes through [`ConnTable::read_event`],
//! [`ConnTable::write_event`] or [`ConnTable::set_lifecycle`].

use std::io;

use slab::Slab;

use super::conn::{Conn, Expired};
use super::state::{Lifecycle, ReadEvent, Reading, WriteEvent, Writing};
use crate::codec::AnyDecoder;
use crate::stream::Stream;
use crate::token::{ConnId, Generations};

/// A connection's three state machines. Read them anywhere; change them only
/// through the table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnState {
    lifecycle: Lifecycle,
    reading: Reading,
    writing: Writing,
}

impl ConnState {
    pub(crate) fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }

    pub(crate) fn reading(&self) -> Reading {
        self.reading
    }

    pub(crate) fn writing(&self) -> Writing {
        self.writing
    }

    pub(crate) fn is_open(&self) -> bool {
        self.lifecycle == Lifecycle::Open
    }

    pub(crate) fn is_connecting(&self) -> bool {
        matches!(self.lifecycle, Lifecycle::Connecting { .. })
    }

    pub(crate) fn is_lingering(&self) -> bool {
        matches!(self.lifecycle, Lifecycle::Lingering(_))
    }
}

/// Which of a turn's deferred lists a connection is on, so that it is put
/// on each at most once.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Listed {
    pub(crate) to_handle: bool,
    pub(crate) to_flush: bool,
    pub(crate) ready: bool,
}

/// A list of things to visit later in the turn (connections to handle or
/// flush, sockets to read again). Taking the batch swaps in a spare vector,
/// so what is added while the batch is served lands in the next one, and
/// neither vector's allocation is lost between turns.
#[derive(Debug)]
pub(crate) struct Deferred<T> {
    items: Vec<T>,
    spare: Vec<T>,
}

impl<T> Default for Deferred<T> {
    fn default() -> Deferred<T> {
        Deferred {
            items: Vec::new(),
            spare: Vec::new(),
        }
    }
}

impl<T> Deferred<T> {
    pub(crate) fn push(&mut self, item: T) {
        self.items.push(item);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The batch to serve now; pushes from here on go to the next one.
    pub(crate) fn take(&mut self) -> Vec<T> {
        std::mem::replace(&mut self.items, std::mem::take(&mut self.spare))
    }

    /// Hands a served batch's vector back for reuse.
    pub(crate) fn give_back(&mut self, mut batch: Vec<T>) {
        batch.clear();
        if batch.capacity() > self.spare.capacity() {
            self.spare = batch;
        }
    }
}

/// Every connection of a reactor, by slot.
#[derive(Debug)]
pub(crate) struct ConnTable {
    slab: Slab<Conn>,
    generations: Generations,
    /// Slots of connections closed this turn, freed at its end.
    to_free: Vec<usize>,
    /// Connections not yet closed (connecting and closing ones included).
    open: usize,
    /// Connections whose READABLE events are acted on: `len(inputs)`, less
    /// the listeners.
    inputs: usize,
    /// Connections waiting for WRITABLE: `len(outputs)`.
    outputs: usize,
    /// One past the highest slot ever used: the extent the timeout sweep
    /// walks.
    extent: usize,
}

impl ConnTable {
    /// A table with room for `slots` connections reserved (address space
    /// only: pages are touched as slots are used).
    pub(crate) fn with_capacity(slots: usize) -> ConnTable {
        ConnTable {
            slab: Slab::with_capacity(slots),
            generations: Generations::with_capacity(slots),
            to_free: Vec::new(),
            open: 0,
            inputs: 0,
            outputs: 0,
            extent: 0,
        }
    }

    /// Puts `stream` in a free slot under a fresh generation. `register` is
    /// called with the new id before anything is stored: if it fails, the
    /// table is left as it was and its error returned.
    pub(crate) fn insert(
        &mut self,
        stream: Stream,
        origin: u32,
        connecting: bool,
        decoder: Option<Box<dyn AnyDecoder>>,
        register: impl FnOnce(&Stream, ConnId) -> io::Result<()>,
    ) -> io::Result<ConnId> {
        let entry = self.slab.vacant_entry();
        let slot = entry.key();
        let generation = self.generations.peek_next(slot);
        let id = ConnId::new(slot, generation);
        register(&stream, id)?;
        self.generations.commit(slot, generation);
        self.extent = self.extent.max(slot + 1);
        let state = if connecting {
            ConnState {
                lifecycle: Lifecycle::Connecting { then_close: false },
                reading: Reading::NotYet { paused: false },
                writing: Writing::Idle,
            }
        } else {
            ConnState {
                lifecycle: Lifecycle::Open,
                reading: Reading::Active,
                writing: Writing::Idle,
            }
        };
        if state.reading.is_active() {
            self.inputs += 1;
        }
        self.open += 1;
        entry.insert(Conn::new(stream, id, origin, state, decoder));
        Ok(id)
    }

    /// The connection `id` names, unless it closed (or its slot now holds
    /// another).
    pub(crate) fn get(&self, id: ConnId) -> Option<&Conn> {
        self.slab
            .get(id.slot())
            .filter(|c| c.id == id && c.state.lifecycle.is_live())
    }

    /// As [`get`](ConnTable::get), mutably.
    pub(crate) fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.slab
            .get_mut(id.slot())
            .filter(|c| c.id == id && c.state.lifecycle.is_live())
    }

    /// The connection `id` names even if it closed this turn (its slot is
    /// not freed before the turn ends): to give its buffers back.
    pub(crate) fn get_even_closed_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.slab.get_mut(id.slot()).filter(|c| c.id == id)
    }

    /// Applies a reading transition; `inputs` follows. Returns the new
    /// state, or `None` if `id` is gone.
    pub(crate) fn read_event(&mut self, id: ConnId, event: ReadEvent) -> Option<Reading> {
        let conn = self.get_mut(id)?;
        let before = conn.state.reading;
        let after = before.next(event);
        conn.state.reading = after;
        match (before.is_active(), after.is_active()) {
            (false, true) => self.inputs += 1,
            (true, false) => self.inputs -= 1,
            _ => {}
        }
        Some(after)
    }

    /// Applies a writing transition; `outputs` follows. Returns the new
    /// state, or `None` if `id` is gone.
    pub(crate) fn write_event(&mut self, id: ConnId, event: WriteEvent) -> Option<Writing> {
        let conn = self.get_mut(id)?;
        let before = conn.state.writing;
        let after = before.next(event);
        conn.state.writing = after;
        match (before.is_awaiting_writable(), after.is_awaiting_writable()) {
            (false, true) => self.outputs += 1,
            (true, false) => self.outputs -= 1,
            _ => {}
        }
        Some(after)
    }

    /// Moves a live connection to `lifecycle`. Closing or closing-later
    /// stops its reading; [`close`](ConnTable::close) is the way to
    /// [`Lifecycle::Closed`].
    pub(crate) fn set_lifecycle(&mut self, id: ConnId, lifecycle: Lifecycle) -> bool {
        debug_assert!(lifecycle != Lifecycle::Closed, "use ConnTable::close");
        let Some(conn) = self.get_mut(id) else {
            return false;
        };
        conn.state.lifecycle = lifecycle;
        if matches!(
            lifecycle,
            Lifecycle::Closing(_)
                | Lifecycle::Lingering(_)
                | Lifecycle::Connecting { then_close: true }
        ) {
            self.read_event(id, ReadEvent::Stop);
        }
        true
    }

    /// Marks a connection closed: out of `inputs` and `outputs`, its slot
    /// freed at the end of the turn. Returns it (for the caller to release
    /// its socket registration and buffers), or `None` if it was already
    /// closed.
    pub(crate) fn close(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.read_event(id, ReadEvent::Stop)?;
        self.write_event(id, WriteEvent::Closed);
        self.open -= 1;
        self.to_free.push(id.slot());
        let conn = self.slab.get_mut(id.slot())?;
        conn.state.lifecycle = Lifecycle::Closed;
        Some(conn)
    }

    /// Frees the slots of connections closed this turn, dropping their
    /// sockets. Only now may a slot be reused: no event of the batch just
    /// dispatched can name it any more.
    pub(crate) fn free_closed(&mut self) {
        for slot in self.to_free.drain(..) {
            self.slab.remove(slot);
        }
    }

    /// Ids of every connection not closed.
    pub(crate) fn live_ids(&self) -> Vec<ConnId> {
        self.iter().map(|c| c.id).collect()
    }

    /// Every connection not closed.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Conn> {
        self.slab
            .iter()
            .map(|(_, c)| c)
            .filter(|c| c.state.lifecycle.is_live())
    }

    /// Connections not yet closed.
    pub(crate) fn open(&self) -> usize {
        self.open
    }

    /// `len(inputs)`, less the listeners.
    pub(crate) fn inputs(&self) -> usize {
        self.inputs
    }

    /// `len(outputs)`.
    pub(crate) fn outputs(&self) -> usize {
        self.outputs
    }

    /// Slots in use, closed-but-not-freed ones included.
    #[cfg(test)]
    pub(crate) fn slots_in_use(&self) -> usize {
        self.slab.len()
    }

    /// The slots a sweep walks: `0..slots()` holds every connection.
    pub(crate) fn slots(&self) -> usize {
        self.extent
    }

    /// The connection in `slot`, if one is live there and past one of its
    /// timeouts at `now_ms`.
    pub(crate) fn expired(&self, slot: usize, now_ms: u64) -> Option<(ConnId, Expired)> {
        let conn = self.slab.get(slot)?;
        if !conn.state.lifecycle.is_live() {
            return None;
        }
        conn.expired(now_ms).map(|expired| (conn.id, expired))
    }

    /// The figures as they would be recounted from every connection's
    /// state; tests compare them with the running counters.
    #[cfg(test)]
    pub(crate) fn recount(&self) -> (usize, usize, usize) {
        let live = self.iter();
        let (mut open, mut inputs, mut outputs) = (0, 0, 0);
        for conn in live {
            open += 1;
            inputs += usize::from(conn.state.reading.is_active());
            outputs += usize::from(conn.state.writing.is_awaiting_writable());
        }
        (open, inputs, outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::Farewell;

    #[test]
    fn deferred_batches_keep_what_is_added_while_serving() {
        let mut list = Deferred::default();
        list.push(1);
        list.push(2);
        let batch = list.take();
        list.push(3); // added while serving the batch
        assert_eq!(batch, [1, 2]);
        list.give_back(batch);
        assert!(!list.is_empty());
        assert_eq!(list.take(), [3]);
        assert!(list.is_empty());
    }

    /// A connected loopback socket to put in the table.
    fn stream() -> (Stream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        (Stream::Tcp(mio::net::TcpStream::from_std(server)), client)
    }

    fn figures(table: &ConnTable) -> (usize, usize, usize) {
        let counted = (table.open(), table.inputs(), table.outputs());
        assert_eq!(counted, table.recount(), "counters drifted from the states");
        counted
    }

    #[test]
    fn accepted_connection_starts_open_and_reading() {
        let mut table = ConnTable::with_capacity(4);
        let (s, _peer) = stream();
        let id = table.insert(s, 0, false, None, |_, _| Ok(())).unwrap();
        let state = table.get(id).unwrap().state;
        assert_eq!(state.lifecycle(), Lifecycle::Open);
        assert_eq!(state.reading(), Reading::Active);
        assert_eq!(state.writing(), Writing::Idle);
        assert_eq!(figures(&table), (1, 1, 0));
    }

    #[test]
    fn failed_registration_leaves_nothing_behind() {
        let mut table = ConnTable::with_capacity(4);
        let (s, _peer) = stream();
        let refused = table.insert(s, 0, false, None, |_, _| Err(io::Error::other("refused")));
        assert!(refused.is_err());
        assert_eq!(figures(&table), (0, 0, 0));
        assert_eq!(table.slots_in_use(), 0);
        // The generation handed out next is still the slot's first.
        let (s, _peer) = stream();
        let id = table.insert(s, 0, false, None, |_, _| Ok(())).unwrap();
        assert_eq!(id, ConnId::new(0, 1));
    }

    #[test]
    fn reading_and_writing_transitions_keep_inputs_and_outputs() {
        let mut table = ConnTable::with_capacity(4);
        let (s, _peer) = stream();
        let id = table.insert(s, 0, false, None, |_, _| Ok(())).unwrap();
        let steps = [
            (Some(ReadEvent::QueueFilled), None, (1, 0, 0)),
            (Some(ReadEvent::HandlerPause), None, (1, 0, 0)),
            (Some(ReadEvent::QueueDrained), None, (1, 0, 0)),
            (Some(ReadEvent::HandlerResume), None, (1, 1, 0)),
            (None, Some(WriteEvent::Queued), (1, 1, 0)),
            (None, Some(WriteEvent::Blocked), (1, 1, 1)),
            (None, Some(WriteEvent::Queued), (1, 1, 1)),
            (None, Some(WriteEvent::Blocked), (1, 1, 1)),
            (None, Some(WriteEvent::Drained), (1, 1, 0)),
            (Some(ReadEvent::InputEnded), None, (1, 0, 0)),
            (Some(ReadEvent::HandlerResume), None, (1, 0, 0)),
        ];
        for (read, write, expected) in steps {
            if let Some(event) = read {
                table.read_event(id, event);
            }
            if let Some(event) = write {
                table.write_event(id, event);
            }
            assert_eq!(figures(&table), expected, "after {read:?} {write:?}");
        }
    }

    #[test]
    fn closing_and_closed_leave_both_figures() {
        let mut table = ConnTable::with_capacity(4);
        let (s, _peer) = stream();
        let id = table.insert(s, 0, false, None, |_, _| Ok(())).unwrap();
        table.write_event(id, WriteEvent::Blocked);
        assert_eq!(figures(&table), (1, 1, 1));
        // Closing after the flush: no more reading, still writing.
        table.set_lifecycle(id, Lifecycle::Closing(Farewell::ByHandler));
        assert_eq!(figures(&table), (1, 0, 1));
        assert!(table.close(id).is_some());
        assert_eq!(figures(&table), (0, 0, 0));
        assert!(table.close(id).is_none(), "closing twice counts once");
        assert!(table.get(id).is_none());
        assert!(
            table.get_even_closed_mut(id).is_some(),
            "freed only at the end of the turn"
        );
        table.free_closed();
        assert!(table.get_even_closed_mut(id).is_none());
        assert_eq!(table.slots_in_use(), 0);
    }

    #[test]
    fn connecting_connection_reads_only_once_connected() {
        let mut table = ConnTable::with_capacity(4);
        let (s, _peer) = stream();
        let id = table
            .insert(s, u32::MAX, true, None, |_, _| Ok(()))
            .unwrap();
        assert_eq!(figures(&table), (1, 0, 0));
        table.read_event(id, ReadEvent::HandlerPause);
        table.set_lifecycle(id, Lifecycle::Open);
        table.read_event(id, ReadEvent::Connected);
        assert_eq!(
            table.get(id).unwrap().state.reading(),
            Reading::PausedByHandler
        );
        assert_eq!(figures(&table), (1, 0, 0));
        table.read_event(id, ReadEvent::HandlerResume);
        assert_eq!(figures(&table), (1, 1, 0));
    }

    #[test]
    fn a_reused_slot_gets_a_new_generation_and_old_ids_miss_it() {
        let mut table = ConnTable::with_capacity(4);
        let (s, _peer) = stream();
        let old = table.insert(s, 0, false, None, |_, _| Ok(())).unwrap();
        table.close(old);
        table.free_closed();
        let (s, _peer) = stream();
        let new = table.insert(s, 0, false, None, |_, _| Ok(())).unwrap();
        assert_eq!(new.slot(), old.slot());
        assert_ne!(new, old);
        assert!(table.get(old).is_none());
        assert!(table.read_event(old, ReadEvent::Stop).is_none());
        assert_eq!(figures(&table), (1, 1, 0));
    }
}
