//! examples/dns_server against the real `dig` (Debian's `bind9-dnsutils`):
//! each record type of the example zone, the negative answers, the refusal
//! of names outside the zone, truncation over UDP with the whole answer
//! over TCP, and datagrams that are no queries.

use crate::util;

use std::net::UdpSocket;
use std::time::Duration;

use util::{start_example, Running};

fn server() -> Running {
    let zone = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/dns_server/example.test.zone"
    );
    start_example("dns_server", &["--zone", zone])
}

/// What `dig` prints for `args` against `server`.
fn dig(server: &Running, args: &[&str]) -> String {
    let output = util::tool("dig")
        .arg("@127.0.0.1")
        .args(["-p", &server.addr.port().to_string()])
        .args(["+time=5", "+tries=1"])
        .args(args)
        .output()
        .expect("run dig");
    assert!(output.status.success(), "dig {args:?} failed: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn short(server: &Running, name: &str, rtype: &str) -> String {
    dig(server, &[name, rtype, "+short"]).trim().to_string()
}

#[test]
fn every_record_type_answers_as_the_zone_says() {
    let server = server();
    assert_eq!(short(&server, "www.example.test", "A"), "192.0.2.1");
    assert_eq!(short(&server, "WWW.Example.Test", "A"), "192.0.2.1");
    assert_eq!(short(&server, "www.example.test", "AAAA"), "2001:db8::1");
    assert_eq!(
        short(&server, "txt.example.test", "TXT"),
        "\"hello, world\" \"a second string\""
    );
    assert_eq!(
        short(&server, "alias.example.test", "A"),
        "www.example.test.\n192.0.2.1",
        "the CNAME, followed within the zone"
    );
    assert_eq!(
        short(&server, "outside.example.test", "A"),
        "www.example.org.",
        "a CNAME out of the zone is the client's to follow"
    );
    assert_eq!(short(&server, "example.test", "NS"), "ns1.example.test.");
    assert_eq!(
        short(&server, "example.test", "MX"),
        "10 mail.example.test."
    );
    assert_eq!(
        short(&server, "example.test", "SOA"),
        "ns1.example.test. hostmaster.example.test. 2026120501 3600 600 86400 300"
    );
    let full = dig(&server, &["www.example.test", "A"]);
    assert!(full.contains("flags: qr aa rd;"), "authoritative: {full}");
    assert!(
        full.contains("www.example.test.\t3600\tIN\tA\t192.0.2.1"),
        "{full}"
    );
}

#[test]
fn negative_answers_carry_the_soa_and_foreign_names_are_refused() {
    let server = server();
    let missing = dig(&server, &["nope.example.test", "A"]);
    assert!(missing.contains("status: NXDOMAIN"), "{missing}");
    // The SOA's TTL is its MINIMUM (300) where that is the shorter.
    assert!(
        missing.contains("example.test.\t\t300\tIN\tSOA\tns1.example.test."),
        "{missing}"
    );
    let no_data = dig(&server, &["www.example.test", "TXT"]);
    assert!(no_data.contains("status: NOERROR"), "{no_data}");
    assert!(no_data.contains("ANSWER: 0, AUTHORITY: 1"), "{no_data}");
    let foreign = dig(&server, &["www.example.org", "A"]);
    assert!(foreign.contains("status: REFUSED"), "{foreign}");
    assert!(
        !foreign.contains("flags: qr aa"),
        "not authoritative: {foreign}"
    );
}

#[test]
fn a_long_answer_is_truncated_over_udp_and_whole_over_tcp() {
    let server = server();
    for size in [&["+noedns"][..], &["+bufsize=1232"]] {
        let udp = dig(
            &server,
            &[&["big.example.test", "TXT", "+ignore"], size].concat(),
        );
        assert!(udp.contains("flags: qr aa tc rd;"), "{size:?}: {udp}");
        assert!(udp.contains("ANSWER: 0,"), "{size:?}: {udp}");
    }
    let tcp = dig(&server, &["big.example.test", "TXT", "+tcp"]);
    assert!(tcp.contains("flags: qr aa rd;"), "{tcp}");
    assert!(tcp.contains("ANSWER: 40,"), "{tcp}");
    // What dig does by default: UDP, truncated, then the same over TCP.
    let retried = dig(&server, &["big.example.test", "TXT", "+short"]);
    assert_eq!(retried.lines().count(), 40, "{retried}");
}

#[test]
fn datagrams_that_are_no_queries_are_dropped_or_refused_and_the_server_answers_on() {
    let server = server();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let to = ("127.0.0.1", server.addr.port());
    // Too short, and a response: no answer (a response to a response
    // could bounce between two servers for ever).
    client.send_to(b"\x12\x34", to).unwrap();
    client
        .send_to(
            &[0x12, 0x34, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1],
            to,
        )
        .unwrap();
    // Two questions: FORMERR, with the id.
    let two = [0xab, 0xcd, 0x01, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1];
    client.send_to(&two, to).unwrap();
    let mut answer = [0u8; 512];
    let n = client.recv(&mut answer).unwrap();
    assert!(n >= 12);
    assert_eq!(
        &answer[..2],
        &[0xab, 0xcd],
        "the first answer is to the third datagram"
    );
    assert_eq!(answer[3] & 0x0f, 1, "FORMERR");
    assert_eq!(short(&server, "www.example.test", "A"), "192.0.2.1");
}
