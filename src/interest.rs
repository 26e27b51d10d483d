//! [`Interest`]: which readiness a registration asks for.
//!
//! The crate's own type rather than mio's, so that a new mio release cannot
//! change this crate's public API; the mio backend converts at its edge.

use std::fmt;
use std::ops::BitOr;

/// Which readiness to watch a descriptor for: readable, writable, or both.
///
/// What [`Reactor::register_source`](crate::Reactor::register_source) and
/// a [`Backend`](crate::backend::Backend) take.
///
/// # Examples
///
/// ```
/// use selectloop::Interest;
///
/// let both = Interest::READABLE | Interest::WRITABLE;
/// assert!(both.is_readable() && both.is_writable());
/// assert_eq!(both.remove(Interest::WRITABLE), Some(Interest::READABLE));
/// assert_eq!(Interest::READABLE.remove(Interest::READABLE), None);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interest(u8);

const READABLE: u8 = 0b01;
const WRITABLE: u8 = 0b10;

impl Interest {
    /// Readable: bytes to read, a connection to accept, or the peer's end
    /// of input.
    pub const READABLE: Interest = Interest(READABLE);
    /// Writable: room in the socket's send buffer, or a connect completed.
    pub const WRITABLE: Interest = Interest(WRITABLE);

    /// Both `self` and `other` (the same as `self | other`).
    pub const fn add(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }

    /// `self` without `other`; `None` when nothing is left (an interest is
    /// never empty).
    pub const fn remove(self, other: Interest) -> Option<Interest> {
        match self.0 & !other.0 {
            0 => None,
            bits => Some(Interest(bits)),
        }
    }

    /// Whether readable readiness is asked for.
    pub const fn is_readable(self) -> bool {
        self.0 & READABLE != 0
    }

    /// Whether writable readiness is asked for.
    pub const fn is_writable(self) -> bool {
        self.0 & WRITABLE != 0
    }
}

impl BitOr for Interest {
    type Output = Interest;

    fn bitor(self, other: Interest) -> Interest {
        self.add(other)
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.is_readable(), self.is_writable()) {
            (true, true) => f.write_str("READABLE | WRITABLE"),
            (true, false) => f.write_str("READABLE"),
            _ => f.write_str("WRITABLE"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Interest;

    #[test]
    fn interests_combine_and_come_apart() {
        let both = Interest::READABLE | Interest::WRITABLE;
        assert_eq!(both, Interest::WRITABLE.add(Interest::READABLE));
        assert!(both.is_readable() && both.is_writable());
        assert!(!Interest::READABLE.is_writable() && !Interest::WRITABLE.is_readable());
        assert_eq!(both.remove(Interest::READABLE), Some(Interest::WRITABLE));
        assert_eq!(Interest::WRITABLE.remove(Interest::WRITABLE), None);
        assert_eq!(
            Interest::WRITABLE.remove(Interest::READABLE),
            Some(Interest::WRITABLE)
        );
        assert_eq!(format!("{both:?}"), "READABLE | WRITABLE");
        assert_eq!(format!("{:?}", Interest::WRITABLE), "WRITABLE");
    }
}
