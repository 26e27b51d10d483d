//! The seed's select() server, line by line. *Exercise:* the heart of the
//! seed is one call, `select.select(inputs, [], [], timeout)`. Write it on
//! `libc::select`: given descriptors and a timeout, return those that are
//! readable. Refuse a descriptor `select` cannot watch (FD_SETSIZE) with an
//! error instead of writing past the end of the set.

use std::io::{self, Write};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use crate::loopback_pair;
use crate::util::few_descriptors;

// ANCHOR: solution
fn readable(fds: &[RawFd], timeout: Duration) -> io::Result<Vec<RawFd>> {
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

#[test]
fn select_reports_only_the_socket_with_data() {
    let _low = few_descriptors(); // every descriptor below FD_SETSIZE
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (mut quiet_client, quiet) = loopback_pair(&listener);
    let (mut talking_client, talking) = loopback_pair(&listener);
    let fds = [quiet.as_raw_fd(), talking.as_raw_fd()];

    assert_eq!(readable(&fds, Duration::from_millis(20)).unwrap(), []);
    talking_client.write_all(b"hello").unwrap();
    assert_eq!(
        readable(&fds, Duration::from_secs(5)).unwrap(),
        [talking.as_raw_fd()]
    );
    quiet_client.write_all(b"me too").unwrap();
    // Neither socket was read: both are readable now, and stay so (select
    // is level-triggered) however often it is asked.
    for _ in 0..3 {
        assert_eq!(readable(&fds, Duration::from_secs(5)).unwrap(), fds);
    }
}

#[test]
fn a_descriptor_past_fd_setsize_is_refused() {
    let refused = readable(&[libc::FD_SETSIZE as RawFd], Duration::ZERO).unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::InvalidInput);
}
