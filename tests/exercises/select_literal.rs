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

#[cfg(not(feature = "exercises"))]
#[path = "solutions/select_literal.rs"]
mod answer;
#[cfg(feature = "exercises")]
#[path = "../../exercises/select_literal.rs"]
mod answer;
use answer::*;

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
