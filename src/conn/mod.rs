//! The connection table: every connection of a reactor, its socket, its
//! inbound frames and its output, and the state machines that say what it
//! may do next.
//!
//! Owns: the slab and its generations, the deferred frees, each
//! connection's buffers (lent by the [`BufferPool`]) and its three state
//! machines, and the mechanics of one connection: read and decode within a
//! budget, queue output, flush within a budget, the interest it wants.
//!
//! May not touch: the handler, the backend's registrations, the timers, or
//! any other part. It reports what happened (a [`ReadEnd`], a
//! [`FlushEnd`]); the loop decides what follows.

mod buffer;
#[allow(clippy::module_inception)] // one connection, inside the table of them
mod conn;
mod decode;
mod output;
mod state;
mod table;
// Their tests read the kernel's socket queues (ioctl, poll): Unix's.
#[cfg(all(test, unix))]
mod tests;
mod turn;

pub(crate) use buffer::BufferPool;
#[cfg(all(test, unix))]
pub(crate) use conn::Conn;
pub(crate) use conn::{Expired, FlushEnd, ReadEnd, ReadLimits, ADOPTED, OUTBOUND};
pub(crate) use state::{Farewell, Lifecycle, ReadEvent, Reading, WriteEvent, Writing};
pub(crate) use table::{ConnTable, Deferred};
pub(crate) use turn::{Backlog, Discarded, FlushReport, List, Outgoing, ReadReport};
