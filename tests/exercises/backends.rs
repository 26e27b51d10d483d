//! Backends. *Exercise:* the same question as `select`, asked of
//! `poll(2)`: given descriptors and a timeout, which are readable? poll
//! takes an array of `pollfd`, so it has no FD_SETSIZE: show it watching a
//! descriptor numbered above 1,024, which `select` cannot.

use std::io::{self, Write};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::loopback_pair;
use crate::util::{many_descriptors, raise_fd_limit};

#[cfg(not(feature = "exercises"))]
#[path = "solutions/backends.rs"]
mod answer;
#[cfg(feature = "exercises")]
#[path = "../../exercises/backends.rs"]
mod answer;
use answer::*;

#[test]
fn poll_watches_a_descriptor_past_fd_setsize() {
    let _alone = many_descriptors(); // no select(2) test beside this one
    assert!(raise_fd_limit(2048) >= 2048, "needs 2,048 descriptors");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (mut client, accepted) = loopback_pair(&listener);
    // The same socket under a number select cannot hold.
    let high = unsafe { libc::fcntl(accepted.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 1500) };
    assert!(high >= 1500, "dup: {}", io::Error::last_os_error());
    let high = unsafe { OwnedFd::from_raw_fd(high) };
    let (quiet_client, quiet) = loopback_pair(&listener);
    let fds = [quiet.as_raw_fd(), high.as_raw_fd()];

    assert_eq!(readable(&fds, Duration::from_millis(20)).unwrap(), []);
    client.write_all(b"above 1024").unwrap();
    assert_eq!(
        readable(&fds, Duration::from_secs(5)).unwrap(),
        [high.as_raw_fd()]
    );
    drop(quiet_client); // end of input is readable too
    assert_eq!(readable(&fds, Duration::from_secs(5)).unwrap(), fds);
}
