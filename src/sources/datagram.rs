//! Datagram sockets on the loop (UDP, Unix datagram): each datagram
//! received goes to the handler with its peer's address; answers are sent
//! at once, or queued, within a bound, while the socket's send buffer is
//! full. The loop decides when to read and how many (its per-turn budget);
//! this module knows how.

use crate::sys::RawSource;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use mio::net::UdpSocket;
#[cfg(unix)]
use mio::net::UnixDatagram;

/// Where a datagram came from, or goes to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DatagramPeer {
    /// A UDP peer.
    Ip(SocketAddr),
    /// A Unix datagram peer, by the path it is bound to (`None`: an unnamed
    /// socket, which cannot be answered).
    Unix(Option<PathBuf>),
}

impl From<SocketAddr> for DatagramPeer {
    fn from(addr: SocketAddr) -> DatagramPeer {
        DatagramPeer::Ip(addr)
    }
}

impl std::fmt::Display for DatagramPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatagramPeer::Ip(addr) => addr.fmt(f),
            DatagramPeer::Unix(Some(path)) => path.display().fmt(f),
            DatagramPeer::Unix(None) => f.write_str("(unnamed)"),
        }
    }
}

#[derive(Debug)]
enum Socket {
    Udp(UdpSocket),
    #[cfg(unix)]
    Unix(UnixDatagram),
}

/// Most datagrams one receive call takes (`recvmmsg` on Linux).
pub(crate) const BATCH: usize = 16;

/// The largest datagram: a UDP payload fits in 64 KiB.
pub(crate) const MAX_DATAGRAM: usize = 65_536;

/// Where one receive call puts its datagrams: a slot of
/// [`MAX_DATAGRAM`] bytes each, and each one's length and sender. The
/// slots are allocated zeroed and untouched, so the memory a loop holds
/// for them is the pages datagrams actually filled (a DNS query touches
/// one page of its slot), not the whole megabyte.
pub(crate) struct RecvBatch {
    pub(super) slots: Vec<u8>,
    pub(super) lens: [usize; BATCH],
    pub(super) peers: Vec<DatagramPeer>,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("held", &self.peers.len())
            .finish()
    }
}

impl Default for RecvBatch {
    fn default() -> RecvBatch {
        RecvBatch {
            slots: vec![0; BATCH * MAX_DATAGRAM],
            lens: [0; BATCH],
            peers: Vec::with_capacity(BATCH),
        }
    }
}

impl RecvBatch {
    /// Datagram `i` of the last receive, and its sender.
    pub(crate) fn get(&self, i: usize) -> (&[u8], &DatagramPeer) {
        let start = i * MAX_DATAGRAM;
        (&self.slots[start..start + self.lens[i]], &self.peers[i])
    }
}

/// One datagram socket and its queue of datagrams waiting to be sent.
#[derive(Debug)]
pub(crate) struct Endpoint {
    socket: Socket,
    /// Answers of the batch being handled, sent together after it.
    #[cfg(target_os = "linux")]
    outbox: super::mmsg::Outbox,
    /// A batch is being handled (UDP on Linux only).
    batching: bool,
    queue: VecDeque<(DatagramPeer, Vec<u8>)>,
    queued_bytes: usize,
}

/// What became of a datagram handed to [`Endpoint::send_to`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sent {
    /// The socket took it.
    Now,
    /// Queued behind a full send buffer: the loop should watch for
    /// WRITABLE.
    Queued,
    /// Kept to be sent with the rest of the batch's answers (Linux's
    /// `sendmmsg`; elsewhere never made).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Batched,
}

impl Endpoint {
    pub(crate) fn udp(socket: UdpSocket) -> Endpoint {
        Endpoint::new(Socket::Udp(socket))
    }

    #[cfg(unix)]
    pub(crate) fn unix(socket: UnixDatagram) -> Endpoint {
        Endpoint::new(Socket::Unix(socket))
    }

    fn new(socket: Socket) -> Endpoint {
        Endpoint {
            socket,
            #[cfg(target_os = "linux")]
            outbox: super::mmsg::Outbox::default(),
            batching: false,
            queue: VecDeque::new(),
            queued_bytes: 0,
        }
    }

    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        match &self.socket {
            Socket::Udp(socket) => socket.local_addr().ok(),
            #[cfg(unix)]
            Socket::Unix(_) => None,
        }
    }

    /// Receives up to `max` datagrams (at most [`BATCH`]) into `batch`,
    /// in one system call where the system has one for it; returns how
    /// many. Fewer than asked means the socket had no more.
    pub(crate) fn recv_batch(&self, batch: &mut RecvBatch, max: usize) -> io::Result<usize> {
        batch.peers.clear();
        #[cfg(target_os = "linux")]
        if let Socket::Udp(socket) = &self.socket {
            let max = max.clamp(1, BATCH);
            return super::mmsg::recv_udp_batch(crate::sys::raw_source(socket), batch, max);
        }
        // One at a time elsewhere (Unix datagrams; systems without
        // recvmmsg): `max` is at least one.
        let _ = max;
        let (n, from) = self.recv(&mut batch.slots[..MAX_DATAGRAM])?;
        batch.lens[0] = n;
        batch.peers.push(from);
        Ok(1)
    }

    /// Receives one datagram into `buf` (cut to its length if longer).
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, DatagramPeer)> {
        match &self.socket {
            Socket::Udp(socket) => {
                let (n, from) = socket.recv_from(buf)?;
                Ok((n, DatagramPeer::Ip(from)))
            }
            #[cfg(unix)]
            Socket::Unix(socket) => {
                let (n, from) = socket.recv_from(buf)?;
                let path = from.as_pathname().map(|p| p.to_path_buf());
                Ok((n, DatagramPeer::Unix(path)))
            }
        }
    }

    fn send_now(&self, data: &[u8], to: &DatagramPeer) -> io::Result<usize> {
        match (&self.socket, to) {
            (Socket::Udp(socket), DatagramPeer::Ip(addr)) => socket.send_to(data, *addr),
            #[cfg(unix)]
            (Socket::Unix(socket), DatagramPeer::Unix(Some(path))) => socket.send_to(data, path),
            #[cfg(unix)]
            (Socket::Unix(_), DatagramPeer::Unix(None)) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an unnamed Unix datagram socket cannot be answered",
            )),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a UDP socket sends to IP addresses, a Unix one to paths",
            )),
        }
    }

    /// Sends `data` to `to` now if nothing waits before it and the socket
    /// takes it; queues it otherwise, unless the queue would pass
    /// `max_queued` bytes (`WouldBlock` then: the datagram is dropped).
    pub(crate) fn send_to(
        &mut self,
        data: &[u8],
        to: &DatagramPeer,
        max_queued: usize,
    ) -> io::Result<Sent> {
        #[cfg(target_os = "linux")]
        if let (true, DatagramPeer::Ip(addr), true) = (self.batching, to, self.queue.is_empty()) {
            self.outbox.push(*addr, data);
            return Ok(Sent::Batched);
        }
        if self.queue.is_empty() {
            match self.send_now(data, to) {
                Ok(_) => return Ok(Sent::Now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        if self.queued_bytes + data.len() > max_queued {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "the datagram send queue is full",
            ));
        }
        self.queued_bytes += data.len();
        self.queue.push_back((to.clone(), data.to_vec()));
        Ok(Sent::Queued)
    }

    /// Sends what is queued until the socket would block: `true` once the
    /// queue is empty. A datagram the system refuses (its peer gone) is
    /// dropped and counted in `failed`.
    pub(crate) fn flush(&mut self, sent: &mut u64, failed: &mut u64) -> bool {
        while let Some((to, data)) = self.queue.front() {
            match self.send_now(data, to) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(_) => *sent += 1,
                Err(_) => *failed += 1,
            }
            if let Some((_, data)) = self.queue.pop_front() {
                self.queued_bytes -= data.len();
            }
        }
        true
    }

    /// Starts a batch: answers sent to IP peers until
    /// [`end_batch`](Endpoint::end_batch) are gathered and sent together
    /// (UDP on Linux; elsewhere each goes at once, as outside a batch).
    pub(crate) fn begin_batch(&mut self) {
        self.batching = cfg!(target_os = "linux") && matches!(self.socket, Socket::Udp(_));
    }

    /// Sends the batch's answers; those the socket had no room for join
    /// the queue (the caller then watches for WRITABLE if it was empty).
    pub(crate) fn end_batch(&mut self, sent: &mut u64, failed: &mut u64) {
        self.batching = false;
        #[cfg(target_os = "linux")]
        if !self.outbox.is_empty() {
            let fd = self.raw_source();
            let queue = &mut self.queue;
            let queued_bytes = &mut self.queued_bytes;
            self.outbox.send_all(fd, sent, failed, |to, data| {
                *queued_bytes += data.len();
                queue.push_back((to, data.to_vec()));
            });
        }
        let _ = (sent, failed);
    }

    pub(crate) fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }
}

impl Endpoint {
    /// Its descriptor (Unix) or socket (Windows), as the backend knows it.
    pub(crate) fn raw_source(&self) -> RawSource {
        match &self.socket {
            Socket::Udp(socket) => crate::sys::raw_source(socket),
            #[cfg(unix)]
            Socket::Unix(socket) => crate::sys::raw_source(socket),
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A Unix datagram peer bound in a fresh folder named after `test`,
    /// and an endpoint of ours (unbound) to send to it.
    fn unix_peer(test: &str) -> (PathBuf, PathBuf, std::os::unix::net::UnixDatagram, Endpoint) {
        let dir = std::env::temp_dir().join(format!("{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let peer_path = dir.join("peer.sock");
        let _ = std::fs::remove_file(&peer_path);
        let peer = std::os::unix::net::UnixDatagram::bind(&peer_path).unwrap();
        let (ours, _) = UnixDatagram::pair().unwrap();
        (dir, peer_path, peer, Endpoint::unix(ours))
    }

    /// A Unix datagram peer that does not read fills up; what does not fit
    /// waits in the queue, in order, up to its bound, and goes once the
    /// peer reads.
    #[test]
    fn a_full_peer_queues_datagrams_in_order_within_the_bound() {
        let (dir, peer_path, peer, mut endpoint) = unix_peer("dgram");
        let to = DatagramPeer::Unix(Some(peer_path.clone()));
        let mut queued = 0;
        let mut sent = 0;
        for i in 0..100_000u32 {
            match endpoint.send_to(&i.to_be_bytes(), &to, 64).unwrap() {
                Sent::Now => sent += 1,
                Sent::Queued => {
                    queued += 1;
                    if queued == 16 {
                        break;
                    }
                }
                Sent::Batched => unreachable!("no batch begun"),
            }
        }
        assert_eq!(queued, 16, "the peer's queue filled after {sent}");
        let full = endpoint.send_to(b"over", &to, 64).unwrap_err();
        assert_eq!(full.kind(), io::ErrorKind::WouldBlock, "64 bytes queued");
        // The peer reads everything: the queue goes out, in order.
        let mut got = Vec::new();
        let (mut ok, mut failed) = (0, 0);
        peer.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 4];
        for round in 0.. {
            assert!(round < 100_000, "the queue never drained");
            if got.len() == sent + 16 {
                break;
            }
            while let Ok(4) = peer.recv(&mut buf) {
                got.push(u32::from_be_bytes(buf));
            }
            endpoint.flush(&mut ok, &mut failed);
        }
        assert!(got.windows(2).all(|w| w[0] + 1 == w[1]), "in order");
        assert_eq!((ok, failed), (16, 0));
        assert!(!endpoint.has_queued());
        assert_eq!(endpoint.queued_bytes, 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn peers_read_as_addresses_and_a_socket_knows_its_own() {
        let ip = DatagramPeer::from(SocketAddr::from(([127, 0, 0, 1], 53)));
        assert_eq!(ip.to_string(), "127.0.0.1:53");
        let path = DatagramPeer::Unix(Some(PathBuf::from("/run/x.sock")));
        assert_eq!(path.to_string(), "/run/x.sock");
        assert_eq!(DatagramPeer::Unix(None).to_string(), "(unnamed)");
        let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let bound = socket.local_addr().unwrap();
        let mut udp = Endpoint::udp(socket);
        assert_eq!(udp.local_addr(), Some(bound));
        // A UDP datagram to a UDP peer goes at once.
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = DatagramPeer::from(peer.local_addr().unwrap());
        assert_eq!(udp.send_to(b"hi", &to, 64).unwrap(), Sent::Now);
        let mut got = [0u8; 2];
        peer.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let (n, from) = peer.recv_from(&mut got).unwrap();
        assert_eq!((&got[..n], from), (&b"hi"[..], bound));
        let (unix, _) = UnixDatagram::pair().unwrap();
        let fd = crate::sys::raw_source(&unix);
        let unix = Endpoint::unix(unix);
        assert_eq!((unix.local_addr(), unix.raw_source()), (None, fd));
        // The wrong family for the socket: refused, not sent.
        let (unix, _) = UnixDatagram::pair().unwrap();
        let mut endpoint = Endpoint::unix(unix);
        let refused = endpoint.send_to(b"x", &ip, 64).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::InvalidInput);
        let unnamed = endpoint
            .send_to(b"x", &DatagramPeer::Unix(None), 64)
            .unwrap_err();
        assert_eq!(unnamed.kind(), io::ErrorKind::InvalidInput);
    }

    /// A queued datagram whose peer went away meanwhile is dropped and
    /// counted as failed; the rest of the queue goes on.
    #[test]
    fn a_queued_datagram_for_a_peer_gone_is_dropped_and_counted() {
        let (dir, peer_path, peer, mut endpoint) = unix_peer("dgram-gone");
        let to = DatagramPeer::Unix(Some(peer_path.clone()));
        let mut queued = 0;
        for _ in 0..100_000 {
            if endpoint.send_to(b"x", &to, 1024).unwrap() == Sent::Queued {
                queued += 1;
                if queued == 3 {
                    break;
                }
            }
        }
        assert_eq!(queued, 3);
        drop(peer);
        std::fs::remove_file(&peer_path).unwrap();
        let (mut sent, mut failed) = (0, 0);
        assert!(endpoint.flush(&mut sent, &mut failed), "the queue is out");
        assert_eq!((sent, failed), (0, 3));
        assert!(!endpoint.has_queued());
        assert_eq!(endpoint.queued_bytes, 0, "the bound counts what waits");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// One receive call takes what waits, up to what is asked, each
    /// datagram whole with its own sender; fewer than asked says the
    /// socket is drained.
    #[test]
    fn a_batch_takes_each_datagram_with_its_sender() {
        let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        let endpoint = Endpoint::udp(socket);
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let big = vec![7u8; 60_000];
        a.send_to(b"one", addr).unwrap();
        b.send_to(b"two", addr).unwrap();
        a.send_to(&big, addr).unwrap();
        b.send_to(b"", addr).unwrap();
        a.send_to(b"five", addr).unwrap();
        let mut batch = RecvBatch::default();
        let mut got = Vec::new();
        let started = std::time::Instant::now();
        while got.len() < 5 {
            assert!(started.elapsed().as_secs() < 5, "got {}", got.len());
            match endpoint.recv_batch(&mut batch, 3) {
                Ok(n) => {
                    assert!((1..=3).contains(&n));
                    for i in 0..n {
                        let (data, from) = batch.get(i);
                        got.push((data.to_vec(), from.clone()));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        let from_a = DatagramPeer::from(a.local_addr().unwrap());
        let from_b = DatagramPeer::from(b.local_addr().unwrap());
        let expected = [
            (b"one".to_vec(), from_a.clone()),
            (b"two".to_vec(), from_b.clone()),
            (big, from_a.clone()),
            (Vec::new(), from_b),
            (b"five".to_vec(), from_a),
        ];
        assert!(got == expected, "datagrams or senders mixed up");
        let drained = endpoint.recv_batch(&mut batch, 3).unwrap_err();
        assert_eq!(drained.kind(), io::ErrorKind::WouldBlock);
    }

    /// A UDP endpoint on loopback, and a peer for it to answer (reads time
    /// out after 5 s), with the peer's address.
    fn endpoint_and_peer() -> (Endpoint, std::net::UdpSocket, DatagramPeer) {
        let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let to = DatagramPeer::from(peer.local_addr().unwrap());
        (Endpoint::udp(socket), peer, to)
    }

    /// A batch's answers to UDP peers go together after it, in order; the
    /// ones the socket refuses are counted, and outside a batch each goes
    /// at once again.
    #[test]
    fn a_batch_sends_its_answers_together_in_order() {
        let (mut endpoint, peer, to) = endpoint_and_peer();
        endpoint.begin_batch();
        let batched = if cfg!(target_os = "linux") {
            Sent::Batched
        } else {
            Sent::Now
        };
        for i in 0..40u8 {
            assert_eq!(endpoint.send_to(&[i; 3], &to, 1024).unwrap(), batched);
        }
        let (mut sent, mut failed) = (0, 0);
        endpoint.end_batch(&mut sent, &mut failed);
        if cfg!(target_os = "linux") {
            assert_eq!((sent, failed), (40, 0), "all of them, in 3 calls of 16");
        }
        assert_eq!(endpoint.send_to(b"alone", &to, 1024).unwrap(), Sent::Now);
        let mut got = [0u8; 8];
        for i in 0..40u8 {
            let n = peer.recv(&mut got).unwrap();
            assert_eq!(&got[..n], &[i; 3]);
        }
        let n = peer.recv(&mut got).unwrap();
        assert_eq!(&got[..n], b"alone");
    }

    /// A batch's answer the system refuses (here one to port 0, which
    /// sends nothing) is counted and skipped; the ones after it go.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_refused_answer_in_a_batch_is_counted_and_the_rest_go() {
        let (mut endpoint, peer, to) = endpoint_and_peer();
        let nowhere = DatagramPeer::from(SocketAddr::from(([127, 0, 0, 1], 0)));
        endpoint.begin_batch();
        for (i, peer) in [&to, &nowhere, &to, &nowhere, &nowhere, &to]
            .into_iter()
            .enumerate()
        {
            assert_eq!(
                endpoint.send_to(&[i as u8], peer, 1024).unwrap(),
                Sent::Batched
            );
        }
        let (mut sent, mut failed) = (0, 0);
        endpoint.end_batch(&mut sent, &mut failed);
        assert_eq!((sent, failed), (3, 3));
        let mut got = [0u8; 1];
        for expected in [0u8, 2, 5] {
            peer.recv(&mut got).unwrap();
            assert_eq!(got[0], expected);
        }
        assert!(!endpoint.has_queued());
    }
}
