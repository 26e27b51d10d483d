//! `recvmmsg(2)` and `sendmmsg(2)`: many UDP datagrams per system call,
//! as NSD and Unbound read and answer (Linux; elsewhere a datagram a call).

use std::io;
use std::net::SocketAddr;
use std::os::unix::io::RawFd;

use super::datagram::{DatagramPeer, RecvBatch, BATCH, MAX_DATAGRAM};

/// `recvmmsg(2)`: up to `max` datagrams from a UDP socket in one call.
pub(super) fn recv_udp_batch(fd: RawFd, batch: &mut RecvBatch, max: usize) -> io::Result<usize> {
    // SAFETY: all-zero is a valid value for these plain C structures.
    let mut addrs: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
    let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    let base = batch.slots.as_mut_ptr();
    for i in 0..max {
        iovecs[i] = libc::iovec {
            // SAFETY: slot `i` lies within `slots` (BATCH slots long).
            iov_base: unsafe { base.add(i * MAX_DATAGRAM) }.cast(),
            iov_len: MAX_DATAGRAM,
        };
        let name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
        let name_len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        point(&mut headers[i], name, name_len, &mut iovecs[i]);
    }
    // SAFETY: `headers` holds `max` initialised message headers whose
    // buffers and address stores outlive the call.
    let got = unsafe {
        libc::recvmmsg(
            fd,
            headers.as_mut_ptr(),
            max as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    let got = got as usize;
    for i in 0..got {
        batch.lens[i] = headers[i].msg_len as usize;
        // SAFETY: the kernel wrote a socket address of this length.
        let addr = unsafe { socket2::SockAddr::new(addrs[i], headers[i].msg_hdr.msg_namelen) };
        let from = addr
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP peer"))?;
        batch.peers.push(DatagramPeer::Ip(from));
    }
    Ok(got)
}

/// Points a message header at one peer address and one buffer.
fn point(
    header: &mut libc::mmsghdr,
    name: *mut libc::c_void,
    name_len: libc::socklen_t,
    buffer: &mut libc::iovec,
) {
    header.msg_hdr.msg_name = name;
    header.msg_hdr.msg_namelen = name_len;
    header.msg_hdr.msg_iov = buffer;
    header.msg_hdr.msg_iovlen = 1;
}

/// Answers gathered while a batch of datagrams is handled, sent together
/// afterwards: their bytes back to back, and each one's peer and place.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    bytes: Vec<u8>,
    items: Vec<(SocketAddr, usize, usize)>,
}

impl Outbox {
    pub(super) fn push(&mut self, to: SocketAddr, data: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        self.items.push((to, start, data.len()));
    }

    pub(super) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Sends what it holds with `sendmmsg`, up to [`BATCH`] a call:
    /// counts the datagrams sent and refused (a peer gone), and hands
    /// those the socket had no room for to `left_over`, in order.
    pub(super) fn send_all(
        &mut self,
        fd: RawFd,
        sent: &mut u64,
        failed: &mut u64,
        mut left_over: impl FnMut(DatagramPeer, &[u8]),
    ) {
        let mut at = 0;
        while at < self.items.len() {
            let count = (self.items.len() - at).min(BATCH);
            let mut addrs: [socket2::SockAddr; BATCH] = std::array::from_fn(|_| {
                socket2::SockAddr::from(SocketAddr::from(([0, 0, 0, 0], 0)))
            });
            // SAFETY: all-zero is a valid value for these plain C structures.
            let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
            let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            for i in 0..count {
                let (to, start, len) = self.items[at + i];
                addrs[i] = socket2::SockAddr::from(to);
                iovecs[i] = libc::iovec {
                    // SAFETY: `start..start + len` lies within `bytes`.
                    iov_base: unsafe { self.bytes.as_mut_ptr().add(start) }.cast(),
                    iov_len: len,
                };
                let name = addrs[i].as_ptr() as *mut libc::c_void;
                point(&mut headers[i], name, addrs[i].len(), &mut iovecs[i]);
            }
            // SAFETY: `count` initialised headers whose buffers and
            // addresses outlive the call.
            let done = unsafe {
                libc::sendmmsg(
                    fd,
                    headers.as_mut_ptr(),
                    count as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if done > 0 {
                *sent += done as u64;
                at += done as usize;
                continue;
            }
            let error = io::Error::last_os_error();
            match error.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock => {
                    // No room: the rest waits in the socket's queue.
                    for &(to, start, len) in &self.items[at..] {
                        left_over(DatagramPeer::Ip(to), &self.bytes[start..start + len]);
                    }
                    break;
                }
                // The first of them was refused (its peer gone, say).
                _ => {
                    *failed += 1;
                    at += 1;
                }
            }
        }
        self.bytes.clear();
        self.items.clear();
    }
}
