//! One reactor per core. *Exercise:* run two loops on one address with a
//! `Group`, each answering `loop N` (its index) to every line, and check
//! that the connections are spread over both. The factory runs on each
//! loop's own thread, so each handler knows its loop and shares nothing.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use selectloop::codec::Lines;
use selectloop::{Balance, Config, ConnId, Context, Group};

use crate::util::{connect, read_n};

#[cfg(not(feature = "exercises"))]
#[path = "solutions/many_cores.rs"]
mod answer;
#[cfg(feature = "exercises")]
#[path = "../../exercises/many_cores.rs"]
mod answer;
use answer::*;

#[test]
fn two_loops_share_the_connections() {
    let group = start_two_loops().unwrap();
    let mut served_by = BTreeMap::<String, usize>::new();
    let clients: Vec<_> = (0..20).map(|_| connect(group.local_addr())).collect();
    for mut client in clients {
        // Each connection stays on one loop: ask twice, same answer.
        client.write_all(b"who?\nwho?\n").unwrap();
        let answers = String::from_utf8(read_n(&mut client, 14)).unwrap();
        let (first, second) = answers.split_at(7);
        assert_eq!(first, second);
        *served_by.entry(first.trim().to_string()).or_default() += 1;
    }
    assert_eq!(
        served_by,
        BTreeMap::from([("loop 0".into(), 10), ("loop 1".into(), 10)])
    );
    group.shutdown(Duration::from_secs(1));
    let stats = group.join().unwrap();
    assert_eq!(stats.iter().map(|s| s.accepted).sum::<u64>(), 20);
}
