//! Ids of connections and sources, and how they map onto poller tokens.
//!
//! A connection lives in a slot of a [`slab::Slab`]; when it closes, the slot is
//! reused by a later connection. An event that the kernel queued for the old
//! connection may still be in flight when the slot is reused, so a bare slot
//! number is not enough to name a connection: the id also carries a generation,
//! bumped every time the slot is taken. An event whose generation does not match
//! the slot's current one is *stale*: it is counted and dropped. The
//! embedder's sources get the same treatment.
//!
//! The token packs both into one `usize`:
//!
//! ```text
//!  bit usize::BITS-1   usize::BITS-2   ..HALF          HALF-1..0
//!  0 (connection)      generation (all the bits above the slot)  slot
//!  1 (special)         0 (listener)    0               listener index
//!  1 (special)         1 (source)      generation      source slot
//!  all ones: the cross-thread waker
//! ```

use std::fmt;

/// What a backend reports an event under: the number the reactor gave when
/// it registered the descriptor. A test may build [`Readiness`](crate::backend::Readiness)
/// values with tokens of its own to drive the loop by hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub usize);

/// Bits of the token given to the slot index (the rest hold the generation).
const INDEX_BITS: u32 = usize::BITS / 2;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;
/// The top bit marks tokens that are not connections.
const SPECIAL_BIT: usize = 1 << (usize::BITS - 1);
/// Among those, the next bit marks the embedder's own sources.
const SOURCE_BIT: usize = 1 << (usize::BITS - 2);
/// Generations wrap within the bits left between the index and the special bit.
const GENERATION_MASK: usize = (SPECIAL_BIT - 1) >> INDEX_BITS;
/// A source's generation has one bit fewer (the source bit).
const SOURCE_GENERATION_MASK: usize = (SOURCE_BIT - 1) >> INDEX_BITS;

/// The most connections a reactor can hold at once on this platform (one
/// slot less than the index can name, so no token is the waker's).
pub(crate) const MAX_SLOTS: usize = INDEX_MASK;

/// The token of the cross-thread waker.
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);

/// The generation each slot of a slab last handed out; it outlives what
/// occupied the slot, so a slot's next occupant gets a new one.
#[derive(Debug, Default)]
pub(crate) struct Generations {
    last: Vec<u32>,
    mask: u32,
}

impl Generations {
    /// For connection slots.
    pub(crate) fn with_capacity(slots: usize) -> Generations {
        Generations {
            last: Vec::with_capacity(slots),
            mask: GENERATION_MASK as u32,
        }
    }

    /// For source slots, whose tokens have one generation bit fewer.
    pub(crate) fn for_sources() -> Generations {
        Generations {
            last: Vec::new(),
            mask: SOURCE_GENERATION_MASK as u32,
        }
    }

    /// The generation the next occupant of `slot` gets; nothing is recorded
    /// until [`commit`](Generations::commit).
    pub(crate) fn peek_next(&self, slot: usize) -> u32 {
        let last = self.last.get(slot).copied().unwrap_or(0);
        last.wrapping_add(1) & self.mask
    }

    /// Records that `slot` was handed out under `generation`.
    pub(crate) fn commit(&mut self, slot: usize, generation: u32) {
        if slot >= self.last.len() {
            self.last.resize(slot + 1, 0);
        }
        self.last[slot] = generation;
    }
}

/// Names one connection for its whole life, and never another one.
///
/// Ids are cheap to copy and compare. An id that outlives its connection stays
/// harmless: every [`Context`](crate::Context) method given it reports the
/// connection as gone, even after the slot was reused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    index: u32,
    generation: u32,
}

impl ConnId {
    pub(crate) fn new(index: usize, generation: u32) -> ConnId {
        debug_assert!(index < MAX_SLOTS);
        ConnId {
            index: index as u32,
            generation,
        }
    }

    /// The slab slot this connection occupies (reused after it closes).
    pub(crate) fn slot(self) -> usize {
        self.index as usize
    }

    /// The token under which the connection's socket is registered.
    pub(crate) fn token(self) -> Token {
        let generation = self.generation as usize & GENERATION_MASK;
        Token((generation << INDEX_BITS) | self.index as usize)
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}.{}", self.index, self.generation)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Names a listening socket added with [`Reactor::listen`](crate::Reactor::listen).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerId(pub(crate) usize);

/// Names a descriptor of the embedder's registered with
/// [`Reactor::register_source`](crate::Reactor::register_source).
///
/// Like [`ConnId`], it carries a generation: once the source is
/// deregistered, its id (and any event still queued under it) never reaches
/// a source registered later in the same slot.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceId {
    index: u32,
    generation: u32,
}

impl SourceId {
    pub(crate) fn new(index: usize, generation: u32) -> SourceId {
        debug_assert!(index < MAX_SLOTS);
        SourceId {
            index: index as u32,
            generation,
        }
    }

    pub(crate) fn slot(self) -> usize {
        self.index as usize
    }

    pub(crate) fn generation(self) -> u32 {
        self.generation
    }

    pub(crate) fn token(self) -> Token {
        let generation = self.generation as usize & SOURCE_GENERATION_MASK;
        Token(SPECIAL_BIT | SOURCE_BIT | (generation << INDEX_BITS) | self.index as usize)
    }
}

impl fmt::Debug for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "source#{}.{}", self.index, self.generation)
    }
}

/// What a token received from the poller refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Conn(ConnId),
    Listener(ListenerId),
    Source(SourceId),
    Waker,
}

pub(crate) fn listener_token(id: ListenerId) -> Token {
    Token(SPECIAL_BIT | id.0)
}

pub(crate) fn decode(token: Token) -> TokenKind {
    let index = token.0 & INDEX_MASK;
    if token == WAKER_TOKEN {
        TokenKind::Waker
    } else if token.0 & (SPECIAL_BIT | SOURCE_BIT) == SPECIAL_BIT | SOURCE_BIT {
        let generation = (token.0 >> INDEX_BITS) & SOURCE_GENERATION_MASK;
        TokenKind::Source(SourceId::new(index, generation as u32))
    } else if token.0 & SPECIAL_BIT != 0 {
        TokenKind::Listener(ListenerId(token.0 & !SPECIAL_BIT))
    } else {
        let generation = (token.0 >> INDEX_BITS) & GENERATION_MASK;
        TokenKind::Conn(ConnId::new(index, generation as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_token_round_trips() {
        for (index, generation) in [(0, 0), (7, 1), (MAX_SLOTS - 1, 12345)] {
            let id = ConnId::new(index, generation);
            assert_eq!(decode(id.token()), TokenKind::Conn(id));
        }
    }

    #[test]
    fn generation_wraps_without_touching_the_special_bit() {
        let last = GENERATION_MASK as u32;
        let mut generations = Generations::with_capacity(4);
        generations.commit(3, last);
        assert_eq!(generations.peek_next(3), 0);
        let id = ConnId::new(3, last);
        assert_eq!(id.token().0 & SPECIAL_BIT, 0);
        assert_eq!(decode(id.token()), TokenKind::Conn(id));
    }

    #[test]
    fn listener_and_waker_tokens_are_not_connections() {
        let listener = ListenerId(2);
        assert_eq!(
            decode(listener_token(listener)),
            TokenKind::Listener(listener)
        );
        assert_eq!(decode(WAKER_TOKEN), TokenKind::Waker);
        let source = SourceId::new(5, SOURCE_GENERATION_MASK as u32);
        assert_eq!(decode(source.token()), TokenKind::Source(source));
        let mut generations = Generations::for_sources();
        generations.commit(5, SOURCE_GENERATION_MASK as u32);
        assert_eq!(generations.peek_next(5), 0, "source generations wrap first");
    }
}
