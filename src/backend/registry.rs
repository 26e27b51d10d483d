//! The interest table the level-triggered backends keep for themselves
//! (epoll and kqueue keep theirs in the kernel): one entry per watched
//! descriptor, its token beside it, and an index from descriptor to
//! position so that adding, changing and removing one is O(1) (removal
//! swaps the last entry into the hole).

use crate::sys::RawSource;
use std::collections::HashMap;
use std::io;

use super::Token;

/// An entry that knows the descriptor it is about.
pub(super) trait Watched {
    fn fd(&self) -> RawSource;
}

#[cfg(unix)]
impl Watched for libc::pollfd {
    fn fd(&self) -> RawSource {
        self.fd
    }
}

#[cfg(windows)]
impl Watched for windows_sys::Win32::Networking::WinSock::WSAPOLLFD {
    fn fd(&self) -> RawSource {
        self.fd as RawSource
    }
}

/// The entries, in an array the backend can hand to the kernel as it is.
#[derive(Debug)]
pub(super) struct Registry<E> {
    pub(super) entries: Vec<E>,
    /// `tokens[i]` is what `entries[i]` is reported under.
    pub(super) tokens: Vec<Token>,
    position: HashMap<RawSource, usize>,
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
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        self.position.insert(fd, self.entries.len());
        self.entries.push(entry);
        self.tokens.push(token);
        Ok(())
    }

    /// The entry of `fd` and its token; `ENOENT` if it is not watched.
    pub(super) fn get_mut(&mut self, fd: RawSource) -> io::Result<(&mut E, &mut Token)> {
        let &at = self
            .position
            .get(&fd)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok((&mut self.entries[at], &mut self.tokens[at]))
    }

    /// Stops watching `fd`; `ENOENT` if it was not watched.
    pub(super) fn remove(&mut self, fd: RawSource) -> io::Result<()> {
        let at = self
            .position
            .remove(&fd)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        self.entries.swap_remove(at);
        self.tokens.swap_remove(at);
        if let Some(moved) = self.entries.get(at) {
            self.position.insert(moved.fd(), at);
        }
        Ok(())
    }
}
