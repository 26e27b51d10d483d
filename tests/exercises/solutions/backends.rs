//! The solution of the exercise of `book/src/backends.md`, which the book
//! shows folded; `tests/exercises/backends.rs` holds it to the exercise.

use super::*;

// ANCHOR: solution
pub fn readable(fds: &[RawFd], timeout: Duration) -> io::Result<Vec<RawFd>> {
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let millis = timeout.as_millis().min(libc::c_int::MAX as u128) as libc::c_int;
    // SAFETY: `polled` is a valid array of `polled.len()` pollfd structs.
    let ready = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, millis) };
    if ready < 0 {
        return Err(io::Error::last_os_error());
    }
    // The kernel answers in `revents`, leaving `events` as asked: the same
    // array can be passed again, unlike select's sets. A peer that closed
    // shows POLLHUP or POLLERR; reading then returns 0 or the error.
    let answered = libc::POLLIN | libc::POLLHUP | libc::POLLERR;
    Ok(polled
        .iter()
        .filter(|p| p.revents & answered != 0)
        .map(|p| p.fd)
        .collect())
}
// ANCHOR_END: solution
