//! The spare descriptor (libuv's `uv__emfile_trick`): one descriptor held
//! open for the day `accept` fails for lack of them. Closing it frees one,
//! which is enough to accept a waiting connection and close it at once, so
//! the backlog sheds instead of filling with clients that wait for nothing.

use std::fs::File;

/// One descriptor kept in reserve (`/dev/null`, opened close-on-exec).
#[derive(Debug)]
pub(crate) struct Reserve {
    spare: Option<File>,
}

impl Reserve {
    /// Takes the spare descriptor; none if even that fails (the loop then
    /// pauses instead of shedding).
    pub(crate) fn new() -> Reserve {
        Reserve {
            spare: File::open("/dev/null").ok(),
        }
    }

    /// No spare (the policy does not shed).
    pub(crate) fn none() -> Reserve {
        Reserve { spare: None }
    }

    pub(crate) fn is_held(&self) -> bool {
        self.spare.is_some()
    }

    /// Lets the spare descriptor go, runs `shed` (which may now accept one
    /// connection at a time and drop it), then takes the spare back.
    /// Returns `false`, without running `shed`, when no spare was held.
    pub(crate) fn spend(&mut self, shed: impl FnOnce()) -> bool {
        if self.spare.take().is_none() {
            return false;
        }
        shed();
        self.spare = File::open("/dev/null").ok();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::Reserve;

    #[test]
    fn the_spare_is_freed_while_shedding_and_taken_back_after() {
        let mut reserve = Reserve::new();
        assert!(reserve.is_held());
        let mut ran = false;
        assert!(reserve.spend(|| ran = true));
        assert!(ran && reserve.is_held());
        reserve.spare = None;
        assert!(!reserve.spend(|| unreachable!("no spare, nothing to shed with")));
    }
}
