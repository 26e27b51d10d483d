//! The solution of the exercise of `book/src/select-literal.md`, which the book
//! shows folded; `tests/exercises/select_literal.rs` holds it to the exercise.

use super::*;

// ANCHOR: solution
pub fn readable(fds: &[RawFd], timeout: Duration) -> io::Result<Vec<RawFd>> {
    // An fd_set is a bitmap of FD_SETSIZE (1,024) bits: a larger
    // descriptor has no bit, and FD_SET on it would write past the set.
    if let Some(&fd) = fds
        .iter()
        .find(|&&fd| !(0..libc::FD_SETSIZE as RawFd).contains(&fd))
    {
        let why = format!("descriptor {fd} is out of select()'s range (FD_SETSIZE)");
        return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
    }
    // SAFETY: an all-zero fd_set is a valid, empty set; every descriptor
    // set below was checked to be within it.
    let mut set: libc::fd_set = unsafe { std::mem::zeroed() };
    for &fd in fds {
        unsafe { libc::FD_SET(fd, &mut set) };
    }
    let mut timeout = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    let highest = fds.iter().copied().max().unwrap_or(-1);
    // select() rewrites the set in place: on return it holds only the
    // ready descriptors. That is why the seed builds its lists anew each
    // turn, and why Python's select() returns new lists.
    let ready = unsafe {
        libc::select(
            highest + 1,
            &mut set,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut timeout,
        )
    };
    if ready < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fds
        .iter()
        .copied()
        .filter(|&fd| unsafe { libc::FD_ISSET(fd, &set) })
        .collect())
}
// ANCHOR_END: solution
