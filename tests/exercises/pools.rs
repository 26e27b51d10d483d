//! Pools. *Exercise:* the notes' `pool.apply_async(work, callback=cb)`,
//! where `cb` runs in the main process: a server that counts the words of
//! each line on the worker pool (slow work, off the loop) and answers the
//! count from the callback, on the loop thread, in the order the lines
//! came, however the jobs finish.

use std::io::Write;
use std::thread;
use std::time::Duration;

use selectloop::codec::Lines;
use selectloop::{Config, ConnId, Context};

use crate::util::{connect, read_n, Server};

#[cfg(not(feature = "exercises"))]
#[path = "solutions/pools.rs"]
mod answer;
#[cfg(feature = "exercises")]
#[path = "../../exercises/pools.rs"]
mod answer;
use answer::*;

#[test]
fn counts_come_back_in_the_order_of_the_lines() {
    let server = Server::start(word_count_config(), count_words_on_the_pool);
    let mut client = connect(server.addr);
    let mut expected = String::new();
    let mut request = String::new();
    for words in 1..=12 {
        request.push_str(&vec!["w"; words].join(" "));
        request.push('\n');
        expected.push_str(&format!("{words}\n"));
    }
    client.write_all(request.as_bytes()).unwrap();
    let answers = read_n(&mut client, expected.len());
    assert_eq!(String::from_utf8(answers).unwrap(), expected);
    assert_eq!(server.stats().jobs_dropped, 0);
}
