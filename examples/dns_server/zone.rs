//! A zone from an RFC 1035 master file: `$ORIGIN`, `$TTL`, comments,
//! parentheses across lines, quoted strings, owners omitted (the previous
//! one) or `@` (the origin), relative names completed with the origin;
//! the record types A, AAAA, NS, CNAME, SOA, MX and TXT, class IN. NSD
//! loads the same file.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::message::{encode_name, Name};

pub const TYPE_A: u16 = 1;
pub const TYPE_NS: u16 = 2;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_MX: u16 = 15;
pub const TYPE_TXT: u16 = 16;
pub const TYPE_AAAA: u16 = 28;

/// One resource record's type, time to live and data, in wire format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub rtype: u16,
    pub ttl: u32,
    pub rdata: Vec<u8>,
}

/// The records of one zone, by owner name (lower case, wire format).
#[derive(Debug, Default)]
pub struct Zone {
    pub origin: Name,
    pub names: HashMap<Name, Vec<Record>>,
}

impl Zone {
    /// The zone's SOA record (every zone has one).
    pub fn soa(&self) -> Option<&Record> {
        self.names
            .get(&self.origin)?
            .iter()
            .find(|r| r.rtype == TYPE_SOA)
    }

    /// Whether `name` is the origin or below it.
    pub fn contains(&self, name: &Name) -> bool {
        name.is_within(&self.origin)
    }

    /// Reads a master file. Errors name the line.
    pub fn parse(text: &str) -> Result<Zone, String> {
        let mut zone = Zone::default();
        let mut origin: Option<Name> = None;
        let mut default_ttl = 3600;
        let mut owner: Option<Name> = None;
        for (number, entry) in entries(text)? {
            let fail = |why: String| format!("line {number}: {why}");
            let mut words = entry.words.iter().map(String::as_str).peekable();
            match words.peek().copied() {
                Some("$ORIGIN") => {
                    words.next();
                    let name = words
                        .next()
                        .ok_or_else(|| fail("$ORIGIN without a name".into()))?;
                    origin = Some(Name::parse(name, None).map_err(fail)?);
                    continue;
                }
                Some("$TTL") => {
                    words.next();
                    let ttl = words
                        .next()
                        .ok_or_else(|| fail("$TTL without a value".into()))?;
                    default_ttl = ttl.parse().map_err(|_| fail(format!("bad TTL {ttl:?}")))?;
                    continue;
                }
                Some(directive) if directive.starts_with('$') => {
                    return Err(fail(format!("{directive} is not supported")));
                }
                _ => {}
            }
            let origin_now = origin
                .clone()
                .ok_or_else(|| fail("a record before $ORIGIN".into()))?;
            if !entry.starts_blank {
                let name = words.next().ok_or_else(|| fail("no owner".into()))?;
                owner = Some(if name == "@" {
                    origin_now.clone()
                } else {
                    Name::parse(name, Some(&origin_now)).map_err(fail)?
                });
            }
            let this_owner = owner.clone().ok_or_else(|| fail("no owner yet".into()))?;
            let mut ttl = default_ttl;
            let mut rtype = None;
            for word in words.by_ref() {
                if let Ok(n) = word.parse::<u32>() {
                    ttl = n;
                } else if word.eq_ignore_ascii_case("IN") {
                } else {
                    rtype = Some(word.to_ascii_uppercase());
                    break;
                }
            }
            let rtype = rtype.ok_or_else(|| fail("no record type".into()))?;
            let rest: Vec<&str> = words.collect();
            let (code, rdata) = rdata(&rtype, &rest, &origin_now).map_err(fail)?;
            if zone.origin.is_root() {
                zone.origin = origin_now.clone();
            }
            zone.names.entry(this_owner).or_default().push(Record {
                rtype: code,
                ttl,
                rdata,
            });
        }
        if zone.soa().is_none() {
            return Err("the zone has no SOA record at its origin".into());
        }
        Ok(zone)
    }
}

/// One logical line: its words (quoted strings kept whole, quotes off, a
/// leading `"` kept to mark them), and whether it began with a blank.
struct Entry {
    words: Vec<String>,
    starts_blank: bool,
}

/// Splits the file into entries, joining the lines inside parentheses and
/// dropping comments.
fn entries(text: &str) -> Result<Vec<(usize, Entry)>, String> {
    let mut out = Vec::new();
    let mut current: Option<(usize, Entry)> = None;
    let mut depth = 0;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if depth == 0 {
            if let Some(done) = current.take() {
                if !done.1.words.is_empty() {
                    out.push(done);
                }
            }
            let starts_blank = line.starts_with([' ', '\t']);
            current = Some((
                number,
                Entry {
                    words: Vec::new(),
                    starts_blank,
                },
            ));
        }
        let words = &mut current.as_mut().expect("an entry").1.words;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                ';' => break,
                '(' => depth += 1,
                ')' => {
                    if depth == 0 {
                        return Err(format!("line {number}: ')' without '('"));
                    }
                    depth -= 1;
                }
                '"' => {
                    let mut word = String::from("\"");
                    loop {
                        match chars.next() {
                            Some('"') => break,
                            Some('\\') => word.extend(chars.next()),
                            Some(c) => word.push(c),
                            None => return Err(format!("line {number}: unclosed quote")),
                        }
                    }
                    words.push(word);
                }
                c if c.is_whitespace() => {}
                c => {
                    let mut word = String::from(c);
                    while let Some(&next) = chars.peek() {
                        if next.is_whitespace() || "();\"".contains(next) {
                            break;
                        }
                        word.push(next);
                        chars.next();
                    }
                    words.push(word);
                }
            }
        }
    }
    if depth != 0 {
        return Err("unclosed '(' at the end of the file".into());
    }
    if let Some(done) = current.filter(|(_, e)| !e.words.is_empty()) {
        out.push(done);
    }
    Ok(out)
}

/// A record's type code and data in wire format.
fn rdata(rtype: &str, words: &[&str], origin: &Name) -> Result<(u16, Vec<u8>), String> {
    let name = |word: &str| -> Result<Vec<u8>, String> {
        let name = if word == "@" {
            origin.clone()
        } else {
            Name::parse(word, Some(origin))?
        };
        Ok(encode_name(&name))
    };
    let one = |count: usize| -> Result<(), String> {
        if words.len() == count {
            Ok(())
        } else {
            Err(format!("{rtype} takes {count} values, not {}", words.len()))
        }
    };
    let number = |word: &str| -> Result<u32, String> {
        word.parse().map_err(|_| format!("bad number {word:?}"))
    };
    match rtype {
        "A" => {
            one(1)?;
            let addr: Ipv4Addr = words[0]
                .parse()
                .map_err(|_| format!("bad IPv4 {:?}", words[0]))?;
            Ok((TYPE_A, addr.octets().to_vec()))
        }
        "AAAA" => {
            one(1)?;
            let addr: Ipv6Addr = words[0]
                .parse()
                .map_err(|_| format!("bad IPv6 {:?}", words[0]))?;
            Ok((TYPE_AAAA, addr.octets().to_vec()))
        }
        "NS" | "CNAME" => {
            one(1)?;
            let code = if rtype == "NS" { TYPE_NS } else { TYPE_CNAME };
            Ok((code, name(words[0])?))
        }
        "MX" => {
            one(2)?;
            let preference = u16::try_from(number(words[0])?).map_err(|_| "bad preference")?;
            let mut data = preference.to_be_bytes().to_vec();
            data.extend(name(words[1])?);
            Ok((TYPE_MX, data))
        }
        "SOA" => {
            one(7)?;
            let mut data = name(words[0])?;
            data.extend(name(words[1])?);
            for word in &words[2..] {
                data.extend(number(word)?.to_be_bytes());
            }
            Ok((TYPE_SOA, data))
        }
        "TXT" => {
            if words.is_empty() {
                return Err("TXT needs a string".into());
            }
            let mut data = Vec::new();
            for word in words {
                let text = word.strip_prefix('"').unwrap_or(word).as_bytes();
                if text.len() > 255 {
                    return Err("a TXT string is 255 bytes at most".into());
                }
                data.push(text.len() as u8);
                data.extend_from_slice(text);
            }
            Ok((TYPE_TXT, data))
        }
        other => Err(format!("record type {other} is not supported")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZONE: &str = concat!(
        "$ORIGIN example.test.\n",
        "$TTL 300\n",
        "@ IN SOA ns1 hostmaster ( 1 3600 600 86400 60 ) ; the apex\n",
        "  IN NS ns1\n",
        "ns1 IN A 127.0.0.1\n",
        "www 60 IN A 192.0.2.1\n",
        "    IN AAAA 2001:db8::1\n",
        "txt IN TXT \"hello; world\" \"two\"\n",
        "alias IN CNAME www.example.test.\n",
    );

    #[test]
    fn a_master_file_reads_as_nsd_reads_it() {
        let zone = Zone::parse(ZONE).unwrap();
        let name = |text: &str| Name::parse(text, None).unwrap();
        assert_eq!(zone.origin, name("example.test."));
        assert_eq!(zone.soa().unwrap().ttl, 300);
        let www = &zone.names[&name("www.example.test.")];
        assert_eq!(www.len(), 2, "the blank owner is the previous one");
        assert_eq!((www[0].ttl, &www[0].rdata[..]), (60, &[192, 0, 2, 1][..]));
        assert_eq!(www[1].rtype, TYPE_AAAA);
        let apex = &zone.names[&name("example.test.")];
        assert!(
            apex.iter().any(|r| r.rtype == TYPE_NS),
            "parentheses joined the SOA"
        );
        let txt = &zone.names[&name("txt.example.test.")][0];
        assert_eq!(txt.rdata, b"\x0chello; world\x03two");
        assert!(zone.contains(&name("WWW.Example.TEST.")));
        assert!(!zone.contains(&name("example.org.")));
    }

    #[test]
    fn mistakes_name_their_line() {
        let bad = "$ORIGIN example.test.\n@ IN SOA a b 1 2 3 4 5\nwww IN A 300.0.0.1\n";
        assert_eq!(
            Zone::parse(bad).unwrap_err(),
            "line 3: bad IPv4 \"300.0.0.1\""
        );
        assert!(Zone::parse("www IN A 1.2.3.4\n")
            .unwrap_err()
            .contains("before $ORIGIN"));
        assert!(Zone::parse("$ORIGIN x.\nwww IN A 1.2.3.4\n")
            .unwrap_err()
            .contains("SOA"));
    }
}
