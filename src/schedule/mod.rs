//! The clocks of the loop: the handler's timers, the idle and
//! whole-message deadlines (swept in slices), lingering closes and
//! outbound connects waiting for their deadline.
//!
//! Owns: the timer slab and heap, the sweep's interval and cursor, and the
//! deadline queues of lingering closes and connects.
//!
//! May not touch: connections, sockets, the handler or the backend. It
//! answers "what is due, and when is the next thing due"; the loop acts on
//! the answer.

mod connects;
mod linger;
mod sweeper;
mod timer;

pub(crate) use connects::ConnectDeadlines;
pub(crate) use linger::LingerDeadlines;
pub(crate) use sweeper::Sweeper;
pub(crate) use timer::{deadline_after, Timers};
pub use timer::{TimerId, MIN_PERIOD};
