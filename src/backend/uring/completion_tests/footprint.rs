//! What an idle connection costs the ring beside the loop's own
//! connection: its slot, and nothing that grows by copying.

use super::*;
use crate::backend::uring::slot::Slot;

#[test]
fn an_idle_connection_costs_the_ring_a_slot_of_32_bytes() {
    // The socket is the stream's and the descriptor the slot's place, so
    // neither is kept twice; the flags fit beside the generation.
    assert_eq!(std::mem::size_of::<Option<Slot>>(), 32);
    let (backend, stream, _peer) = served();
    let mut driver = backend.driver.driver();
    let slot = driver.table.slot(stream.fd()).expect("served");
    assert!(
        slot.io.is_none(),
        "a connection that never spoke holds no bytes"
    );
}

#[test]
fn the_table_is_reserved_so_that_adopting_connections_never_moves_it() {
    // A table grown by doubling leaves each old copy in the heap,
    // resident: 19 bytes per connection at 10,000 idle ones.
    let (_backend, streams) = UringBackend::with_streams(64).expect("io_uring here");
    let streams = streams.expect("provided buffers on this kernel");
    let before = streams.driver().table.slots.as_ptr();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut held = Vec::new();
    for _ in 0..300 {
        let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        held.push((streams.adopt(ours.into(), false).unwrap(), peer));
    }
    let driver = streams.driver();
    let highest = held.iter().map(|(stream, _)| stream.fd()).max().unwrap();
    assert!(driver.table.slots.len() > highest as usize);
    assert_eq!(
        driver.table.slots.as_ptr(),
        before,
        "the table moved while adopting descriptors up to {highest}"
    );
}
