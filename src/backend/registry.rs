//! The interest table the level-triggered backends keep for themselves
//! (epoll and kqueue keep theirs in the kernel): one entry per watched
//! descriptor, its token beside it, and an index from descriptor to
//! position so that adding, changing and removing one is O(1) (removal
//! swaps the last entry into the hole).

use std::collections::HashMap;
use std::io;
use std::os::unix::io::RawFd;

use super::Token;

/// An entry that knows the descriptor it is about.
pub(super) trait Watched {
    fn fd(&self) -> RawFd;
}

impl Watched for libc::pollfd {
    fn fd(&self) -> RawFd {
        self.fd
    }
}

/// The entries, in an array the backend can hand to the kernel as it is.
#[derive(Debug)]
pub(super) struct Registry<E> {
    pub(super) entries: Vec<E>,
    /// `tokens[i]` is what `entries[i]` is reported under.
    pub(super) tokens: Vec<Token>,
    position: HashMap<RawFd, usize>,
}

impl<E> Default for Registry<E> {
    fn default() -> Registry<E> {
        Registry {
            entries: Vec::new(),
            tokens: Vec::new(),
            position: HashMap::new(),
        }
    }
}

impl<E: Watched> Registry<E> {
    /// Watches `entry`'s descriptor; `EEXIST` if it already is.
    pub(super) fn add(&mut self, token: Token, entry: E) -> io::Result<()> {
        let fd = entry.fd();
        if self.position.contains_key(&fd) {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        self.position.insert(fd, self.entries.len());
        self.entries.push(entry);
        self.tokens.push(token);
        Ok(())
    }

    /// The entry of `fd` and its token; `ENOENT` if it is not watched.
    pub(super) fn get_mut(&mut self, fd: RawFd) -> io::Result<(&mut E, &mut Token)> {
        let &at = self
            .position
            .get(&fd)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        Ok((&mut self.entries[at], &mut self.tokens[at]))
    }

    /// Stops watching `fd`; `ENOENT` if it was not watched.
    pub(super) fn remove(&mut self, fd: RawFd) -> io::Result<()> {
        let at = self
            .position
            .remove(&fd)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        self.entries.swap_remove(at);
        self.tokens.swap_remove(at);
        if let Some(moved) = self.entries.get(at) {
            self.position.insert(moved.fd(), at);
        }
        Ok(())
    }
}
