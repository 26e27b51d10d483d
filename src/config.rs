//! Every limit and size of the reactor, in one place, with safe defaults.
//!
//! Each setting says why its default is what it is. Build one with the
//! chained setters:
//!
//! ```
//! use selectloop::Config;
//! use selectloop::codec::Chunks;
//!
//! let config = Config::new()
//!     .codec(Chunks::new(1024)) // the seed's recv(1024)
//!     .backlog(4096);
//! assert_eq!(config.get_backlog(), 4096);
//! ```

use crate::codec::Codec;

/// Settings of a [`Reactor`](crate::Reactor).
#[derive(Clone, Debug)]
pub struct Config {
    pub(crate) backlog: i32,
    pub(crate) codec: Codec,
    pub(crate) read_budget: usize,
    pub(crate) accept_budget: usize,
    pub(crate) read_buffer_size: usize,
    pub(crate) pooled_buffers: usize,
    pub(crate) nodelay: bool,
    pub(crate) events_capacity: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            backlog: 1024,
            codec: Codec::default(),
            read_budget: 64 * 1024,
            accept_budget: 256,
            read_buffer_size: 16 * 1024,
            pooled_buffers: 256,
            nodelay: true,
            events_capacity: 1024,
        }
    }
}

impl Config {
    /// The defaults.
    pub fn new() -> Config {
        Config::default()
    }

    /// Length of the kernel's queue of connections not yet accepted
    /// (`listen(2)`'s backlog). Default 1024: the seed's `listen(5)` refuses
    /// or drops connections as soon as six clients arrive at once; the kernel
    /// caps the value at `net.core.somaxconn`.
    pub fn backlog(mut self, backlog: u32) -> Config {
        self.backlog = backlog.min(i32::MAX as u32) as i32;
        self
    }

    /// How connections' bytes are cut into messages. Default: lines of at most
    /// 64 KiB.
    pub fn codec(mut self, codec: impl Into<Codec>) -> Config {
        self.codec = codec.into();
        self
    }

    /// Bytes read from one connection per turn before the loop moves on to
    /// the others. Default 64 KiB: a client that streams without pause would
    /// otherwise starve everyone else (read until `WouldBlock` never ends).
    /// A connection that hits it is served again on the next turn without
    /// waiting for an event (the ready list).
    pub fn read_budget(mut self, bytes: usize) -> Config {
        self.read_budget = bytes.max(1);
        self
    }

    /// Connections accepted per listener per turn. Default 256: a burst of new
    /// clients must not delay the answers owed to the ones already connected.
    pub fn accept_budget(mut self, connections: usize) -> Config {
        self.accept_budget = connections.max(1);
        self
    }

    /// Size of the buffer a connection borrows when bytes arrive. Default
    /// 16 KiB. Buffers are taken from a pool when needed and returned when
    /// drained, so an idle connection holds none.
    pub fn read_buffer_size(mut self, bytes: usize) -> Config {
        self.read_buffer_size = bytes.max(64);
        self
    }

    /// Drained buffers kept for reuse. Default 256; beyond it they are freed.
    /// Reuse is what keeps the steady path free of allocations.
    pub fn pooled_buffers(mut self, buffers: usize) -> Config {
        self.pooled_buffers = buffers;
        self
    }

    /// Set `TCP_NODELAY` on accepted connections. Default on: a request and
    /// answer protocol must not wait for Nagle's algorithm to coalesce writes.
    pub fn nodelay(mut self, on: bool) -> Config {
        self.nodelay = on;
        self
    }

    /// Events taken from the kernel per poll. Default 1024; more wait for the
    /// next turn, nothing is lost.
    pub fn events_capacity(mut self, events: usize) -> Config {
        self.events_capacity = events.max(1);
        self
    }

    /// See [`backlog`](Config::backlog).
    pub fn get_backlog(&self) -> u32 {
        self.backlog as u32
    }

    /// See [`codec`](Config::codec).
    pub fn get_codec(&self) -> Codec {
        self.codec
    }

    /// See [`read_budget`](Config::read_budget).
    pub fn get_read_budget(&self) -> usize {
        self.read_budget
    }
}
