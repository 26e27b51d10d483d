//! Connection ids and how they map onto `mio::Token`.
//!
//! A connection lives in a slot of a [`slab::Slab`]; when it closes, the slot is
//! reused by a later connection. An event that the kernel queued for the old
//! connection may still be in flight when the slot is reused, so a bare slot
//! number is not enough to name a connection: the id also carries a generation,
//! bumped every time the slot is taken. An event whose generation does not match
//! the slot's current one is *stale*: it is counted and dropped.
//!
//! The token packs both into one `usize`:
//!
//! ```text
//!  usize::BITS-1 | usize::BITS-2 .. HALF | HALF-1 .. 0
//!  kind (0=conn) |    generation         |  slot index
//!  kind (1=listener or waker)            |  listener index
//! ```

use std::fmt;

use mio::Token;

/// Bits of the token given to the slot index (the rest hold the generation).
const INDEX_BITS: u32 = usize::BITS / 2;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;
/// The top bit marks tokens that are not connections.
const SPECIAL_BIT: usize = 1 << (usize::BITS - 1);
/// Among those, the next bit marks the embedder's own sources.
const SOURCE_BIT: usize = 1 << (usize::BITS - 2);
/// Generations wrap within the bits left between the index and the special bit.
const GENERATION_MASK: usize = (SPECIAL_BIT - 1) >> INDEX_BITS;

/// The most connections a reactor can hold at once on this platform.
pub(crate) const MAX_SLOTS: usize = INDEX_MASK;

/// The token of the cross-thread waker (reserved for later use).
#[allow(dead_code)]
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);

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
        debug_assert!(index <= MAX_SLOTS);
        ConnId {
            index: index as u32,
            generation,
        }
    }

    /// The slab slot this connection occupies (reused after it closes).
    pub fn slot(self) -> usize {
        self.index as usize
    }

    /// How many times the slot had been taken when this connection got it.
    pub fn generation(self) -> u32 {
        self.generation
    }

    /// The `mio::Token` under which the connection's socket is registered.
    pub fn token(self) -> Token {
        let generation = self.generation as usize & GENERATION_MASK;
        Token((generation << INDEX_BITS) | self.index as usize)
    }

    /// The next generation for a slot whose last one was `self`.
    pub(crate) fn next_generation(generation: u32) -> u32 {
        ((generation as usize + 1) & GENERATION_MASK) as u32
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SourceId(pub(crate) usize);

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

pub(crate) fn source_token(id: SourceId) -> Token {
    Token(SPECIAL_BIT | SOURCE_BIT | id.0)
}

pub(crate) fn decode(token: Token) -> TokenKind {
    if token == WAKER_TOKEN {
        TokenKind::Waker
    } else if token.0 & (SPECIAL_BIT | SOURCE_BIT) == SPECIAL_BIT | SOURCE_BIT {
        TokenKind::Source(SourceId(token.0 & !(SPECIAL_BIT | SOURCE_BIT)))
    } else if token.0 & SPECIAL_BIT != 0 {
        TokenKind::Listener(ListenerId(token.0 & !SPECIAL_BIT))
    } else {
        let index = token.0 & INDEX_MASK;
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
        assert_eq!(ConnId::next_generation(last), 0);
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
        let source = SourceId(5);
        assert_eq!(decode(source_token(source)), TokenKind::Source(source));
    }
}
