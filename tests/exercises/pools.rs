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

// ANCHOR: solution
fn count_words_on_the_pool(cx: &mut Context<'_>, conn: ConnId, line: &[u8]) {
    let line = String::from_utf8_lossy(line).into_owned();
    let submitted = cx.submit_ordered(
        conn,
        move || {
            // On a worker: the slow part. Short lines take longest here,
            // so jobs finish out of order.
            thread::sleep(Duration::from_millis(40 / (1 + line.len() as u64)));
            line.split_whitespace().count()
        },
        // On the loop thread, like apply_async's callback in the main
        // process: the only place that may touch the connection.
        |cx, conn, words| {
            let _ = cx.send_frame(conn, words.to_string().as_bytes());
        },
    );
    if submitted.is_err() {
        // The pool's queue is full: say so rather than block the loop.
        let _ = cx.send_frame(conn, b"busy");
    }
}

fn word_count_config() -> Config {
    Config::new().codec(Lines::new(1024)).workers(2)
}
// ANCHOR_END: solution

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
