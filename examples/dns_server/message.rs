//! DNS messages (RFC 1035 section 4, EDNS0 from RFC 6891): a query read,
//! an authoritative answer written, cut to what the transport carries.

use std::fmt;

use crate::zone::{Record, Zone, TYPE_CNAME};

/// A domain name: its labels, in lower case (names compare without case).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Name(Vec<Vec<u8>>);

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for label in &self.0 {
            write!(f, "{}.", String::from_utf8_lossy(label))?;
        }
        if self.0.is_empty() {
            f.write_str(".")?;
        }
        Ok(())
    }
}

impl Name {
    /// `text` in master-file form: absolute if it ends with `.`, else
    /// relative to `origin`.
    pub fn parse(text: &str, origin: Option<&Name>) -> Result<Name, String> {
        if text == "." {
            return Ok(Name::default());
        }
        let (body, absolute) = match text.strip_suffix('.') {
            Some(body) => (body, true),
            None => (text, false),
        };
        let mut labels = Vec::new();
        for label in body.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(format!("bad name {text:?}"));
            }
            labels.push(label.to_ascii_lowercase().into_bytes());
        }
        if !absolute {
            let origin = origin.ok_or_else(|| format!("{text:?} is relative, with no origin"))?;
            labels.extend(origin.0.iter().cloned());
        }
        let name = Name(labels);
        if encode_name(&name).len() > 255 {
            return Err(format!("{text:?} is longer than 255 bytes"));
        }
        Ok(name)
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether this name is `other` or below it.
    pub fn is_within(&self, other: &Name) -> bool {
        self.0.ends_with(&other.0)
    }
}

/// `name` in wire format, uncompressed.
pub fn encode_name(name: &Name) -> Vec<u8> {
    let mut out = Vec::new();
    for label in &name.0 {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    out
}

/// Response codes.
pub const NOERROR: u8 = 0;
pub const FORMERR: u8 = 1;
pub const NXDOMAIN: u8 = 3;
pub const NOTIMP: u8 = 4;
pub const REFUSED: u8 = 5;

const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;
/// The UDP payload this server offers in its own OPT record (RFC 9715's
/// advice: no fragmentation on common paths).
pub const EDNS_PAYLOAD: u16 = 1232;

/// A query, as far as an authoritative server reads it.
#[derive(Debug)]
pub struct Query<'a> {
    pub id: u16,
    /// The header's second 16 bits as sent (opcode, RD).
    pub flags: u16,
    /// The question section as sent (name in its case, type, class).
    pub question: &'a [u8],
    pub name: Name,
    pub qtype: u16,
    pub qclass: u16,
    /// The UDP payload size the client offered with EDNS0, if it did.
    pub edns: Option<u16>,
}

/// Why a message gets no answer, or only an error.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not even a header, or itself a response: dropped.
    Drop,
    /// Answered with this code and the header's id.
    Answer { id: u16, flags: u16, rcode: u8 },
}

/// Reads a query: one question, no compression in it, an OPT record if
/// any in the additional section.
pub fn parse_query(msg: &[u8]) -> Result<Query<'_>, Refusal> {
    if msg.len() < 12 {
        return Err(Refusal::Drop);
    }
    let word = |at: usize| u16::from_be_bytes([msg[at], msg[at + 1]]);
    let (id, flags) = (word(0), word(2));
    if flags & 0x8000 != 0 {
        return Err(Refusal::Drop); // a response: never answer one
    }
    let refuse = |rcode| Err(Refusal::Answer { id, flags, rcode });
    if (flags >> 11) & 0xf != 0 {
        return refuse(NOTIMP); // only QUERY
    }
    let (qdcount, ancount, nscount, arcount) = (word(4), word(6), word(8), word(10));
    if qdcount != 1 || ancount != 0 || nscount != 0 {
        return refuse(FORMERR);
    }
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let Some(&len) = msg.get(at) else {
            return refuse(FORMERR);
        };
        at += 1;
        if len == 0 {
            break;
        }
        if len > 63 || at + len as usize > msg.len() {
            return refuse(FORMERR); // a pointer or a cut label
        }
        labels.push(msg[at..at + len as usize].to_ascii_lowercase());
        at += len as usize;
    }
    if at + 4 > msg.len() || at - 12 > 255 {
        return refuse(FORMERR);
    }
    let (qtype, qclass) = (word(at), word(at + 2));
    let question = &msg[12..at + 4];
    at += 4;
    let mut edns = None;
    for _ in 0..arcount {
        // An OPT record: the root name, type 41, the payload size as class.
        if msg.get(at) != Some(&0) || at + 11 > msg.len() {
            return refuse(FORMERR);
        }
        let rtype = word(at + 1);
        let payload = word(at + 3);
        let rdlen = word(at + 9) as usize;
        if rtype != TYPE_OPT || edns.is_some() || at + 11 + rdlen > msg.len() {
            return refuse(FORMERR);
        }
        edns = Some(payload.max(512));
        at += 11 + rdlen;
    }
    if at != msg.len() {
        return refuse(FORMERR);
    }
    Ok(Query {
        id,
        flags,
        question,
        name: Name(labels),
        qtype,
        qclass,
        edns,
    })
}

/// The answer to `msg` from `zone`, at most `limit` bytes (UDP: 512, or
/// the size the client offered with EDNS0): past it, the answer is cut
/// to its header, question and OPT, with TC set, and the client asks
/// again over TCP. `None`: no answer at all.
pub fn respond(zone: &Zone, msg: &[u8], udp: bool) -> Option<Vec<u8>> {
    let query = match parse_query(msg) {
        Ok(query) => query,
        Err(Refusal::Drop) => return None,
        Err(Refusal::Answer { id, flags, rcode }) => {
            let mut out = header(id, flags, rcode, false);
            out[4..6].copy_from_slice(&0u16.to_be_bytes());
            return Some(out);
        }
    };
    let limit = match (udp, query.edns) {
        (false, _) => usize::from(u16::MAX),
        (true, Some(payload)) => usize::from(payload.min(EDNS_PAYLOAD)),
        (true, None) => 512,
    };
    let mut answers: Vec<(Option<Vec<u8>>, &Record)> = Vec::new();
    let mut authority: Vec<&Record> = Vec::new();
    let rcode = if query.qclass != CLASS_IN || !zone.contains(&query.name) {
        REFUSED
    } else {
        lookup(zone, &query, &mut answers, &mut authority)
    };
    let authoritative = rcode != REFUSED;
    let mut out = header(query.id, query.flags, rcode, authoritative);
    out.extend_from_slice(query.question);
    let mut count = 0u16;
    for (owner, record) in &answers {
        // The owner: the question's name (a pointer to it), or a name met
        // on the way (a CNAME's target).
        match owner {
            None => out.extend_from_slice(&0xC00Cu16.to_be_bytes()),
            Some(name) => out.extend_from_slice(name),
        }
        write_record(&mut out, record);
        count += 1;
    }
    out[6..8].copy_from_slice(&count.to_be_bytes());
    let mut count = 0u16;
    for record in &authority {
        // The SOA of a negative answer lives as long as its MINIMUM field
        // says, if that is shorter (RFC 2308 section 3).
        let minimum = record.rdata[record.rdata.len() - 4..]
            .try_into()
            .map_or(record.ttl, u32::from_be_bytes);
        let negative = Record {
            ttl: record.ttl.min(minimum),
            ..(*record).clone()
        };
        out.extend_from_slice(&encode_name(&zone.origin));
        write_record(&mut out, &negative);
        count += 1;
    }
    out[8..10].copy_from_slice(&count.to_be_bytes());
    let opt = query.edns.map(|_| opt_record());
    let opt_len = opt.as_ref().map_or(0, Vec::len);
    if out.len() + opt_len > limit {
        // Truncated: the header and question only, TC set.
        out.truncate(12 + query.question.len());
        out[2] |= 0x02;
        out[6..10].fill(0);
    }
    if let Some(opt) = opt {
        out.extend_from_slice(&opt);
        out[10..12].copy_from_slice(&1u16.to_be_bytes());
    }
    Some(out)
}

/// Fills the answer and authority sections; returns the response code.
fn lookup<'z>(
    zone: &'z Zone,
    query: &Query<'_>,
    answers: &mut Vec<(Option<Vec<u8>>, &'z Record)>,
    authority: &mut Vec<&'z Record>,
) -> u8 {
    let mut name = query.name.clone();
    let mut owner: Option<Vec<u8>> = None;
    // A CNAME chain within the zone, followed at most 8 links deep.
    for _ in 0..8 {
        let Some(records) = zone.names.get(&name) else {
            if answers.is_empty() {
                authority.extend(zone.soa());
                return NXDOMAIN;
            }
            return NOERROR;
        };
        let matching: Vec<&Record> = records.iter().filter(|r| r.rtype == query.qtype).collect();
        if !matching.is_empty() {
            answers.extend(matching.into_iter().map(|r| (owner.clone(), r)));
            return NOERROR;
        }
        match records.iter().find(|r| r.rtype == TYPE_CNAME) {
            Some(cname) => {
                answers.push((owner.clone(), cname));
                let target = parse_wire_name(&cname.rdata);
                if !target.is_within(&zone.origin) {
                    return NOERROR; // the client follows it elsewhere
                }
                owner = Some(cname.rdata.clone());
                name = target;
            }
            None => {
                // The name exists without this type: no data.
                if answers.is_empty() {
                    authority.extend(zone.soa());
                }
                return NOERROR;
            }
        }
    }
    NOERROR
}

/// A name stored in a record's data (uncompressed, lower case).
fn parse_wire_name(data: &[u8]) -> Name {
    let mut labels = Vec::new();
    let mut at = 0;
    while let Some(&len) = data.get(at) {
        if len == 0 {
            break;
        }
        labels.push(data[at + 1..at + 1 + len as usize].to_vec());
        at += 1 + len as usize;
    }
    Name(labels)
}

fn header(id: u16, query_flags: u16, rcode: u8, authoritative: bool) -> Vec<u8> {
    // QR, the query's opcode and RD, AA if ours, no RA: not a resolver.
    let mut flags = 0x8000 | (query_flags & 0x7900) | u16::from(rcode);
    if authoritative {
        flags |= 0x0400;
    }
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    out
}

fn write_record(out: &mut Vec<u8>, record: &Record) {
    out.extend_from_slice(&record.rtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out.extend_from_slice(&record.ttl.to_be_bytes());
    out.extend_from_slice(&(record.rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&record.rdata);
}

/// This server's OPT record: its UDP payload, version 0, no flags.
fn opt_record() -> Vec<u8> {
    let mut opt = vec![0];
    opt.extend_from_slice(&TYPE_OPT.to_be_bytes());
    opt.extend_from_slice(&EDNS_PAYLOAD.to_be_bytes());
    opt.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    opt
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16, edns: Option<u16>) -> Vec<u8> {
        let mut msg = vec![
            0x12,
            0x34,
            0x01,
            0x00,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            u8::from(edns.is_some()),
        ];
        msg.extend(encode_name(&Name::parse(name, None).unwrap()));
        msg.extend_from_slice(&qtype.to_be_bytes());
        msg.extend_from_slice(&CLASS_IN.to_be_bytes());
        if let Some(size) = edns {
            msg.push(0);
            msg.extend_from_slice(&TYPE_OPT.to_be_bytes());
            msg.extend_from_slice(&size.to_be_bytes());
            msg.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        }
        msg
    }

    #[test]
    fn malformed_queries_are_refused_or_dropped() {
        assert_eq!(parse_query(b"short").unwrap_err(), Refusal::Drop);
        let mut response = query("a.test.", 1, None);
        response[2] |= 0x80;
        assert_eq!(
            parse_query(&response).unwrap_err(),
            Refusal::Drop,
            "a response"
        );
        let mut two = query("a.test.", 1, None);
        two[5] = 2;
        assert!(matches!(
            parse_query(&two),
            Err(Refusal::Answer { rcode: FORMERR, .. })
        ));
        let mut pointer = query("a.test.", 1, None);
        pointer[12] = 0xC0;
        assert!(matches!(
            parse_query(&pointer),
            Err(Refusal::Answer { rcode: FORMERR, .. })
        ));
        let mut trailing = query("a.test.", 1, None);
        trailing.push(0);
        assert!(matches!(
            parse_query(&trailing),
            Err(Refusal::Answer { rcode: FORMERR, .. })
        ));
        let ok = query("A.Test.", 1, Some(4096));
        let parsed = parse_query(&ok).unwrap();
        assert_eq!(
            (parsed.name, parsed.edns),
            (Name::parse("a.test.", None).unwrap(), Some(4096))
        );
    }
}
