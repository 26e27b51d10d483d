//! Sorted sets: ZADD (with NX, XX, GT, LT, CH, INCR) and ZPOPMIN (Redis's
//! `t_zset.c`). Scores are read as C's `strtod` reads them and written as
//! `%.17g`, so `0.1` comes back `0.10000000000000001`, as from Redis.

use super::{positive_count, Request, SYNTAX, WRONGTYPE};
use crate::db::{Db, Score, SortedSet, Value};
use crate::resp::reply;

/// ZADD's options.
#[derive(Default)]
struct Options {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// `ZADD key [NX | XX] [GT | LT] [CH] [INCR] score member [score member
/// ...]`, as Redis 7.0's `zaddGenericCommand`: options, then pairs, then
/// the checks in its order, every score parsed before anything changes.
pub fn zadd(db: &mut Db, rq: &mut Request<'_>) {
    let mut options = Options::default();
    let mut first = 2;
    while first < rq.argc() {
        match rq.option(first).to_ascii_uppercase().as_slice() {
            b"NX" => options.nx = true,
            b"XX" => options.xx = true,
            b"GT" => options.gt = true,
            b"LT" => options.lt = true,
            b"CH" => options.ch = true,
            b"INCR" => options.incr = true,
            _ => break,
        }
        first += 1;
    }
    let elements = rq.argc() - first;
    if elements == 0 || elements % 2 == 1 {
        return reply::error(rq.out, SYNTAX);
    }
    let Options {
        nx,
        xx,
        gt,
        lt,
        incr,
        ..
    } = options;
    if nx && xx {
        return reply::error(
            rq.out,
            "ERR XX and NX options at the same time are not compatible",
        );
    }
    if (gt || lt) && nx || gt && lt {
        return reply::error(
            rq.out,
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        );
    }
    if incr && elements > 2 {
        return reply::error(
            rq.out,
            "ERR INCR option supports a single increment-element pair",
        );
    }
    let mut scores = Vec::with_capacity(elements / 2);
    for i in (first..rq.argc()).step_by(2) {
        match parse_score(rq.arg(i)) {
            Some(score) => scores.push(score),
            None => return reply::error(rq.out, "ERR value is not a valid float"),
        }
    }
    let key = rq.args.get(rq.bytes, 1);
    let is_zset = db
        .get(key, rq.now_ms)
        .map(|value| matches!(value, Value::Zset(_)));
    let outcome = match is_zset {
        Some(false) => return reply::error(rq.out, WRONGTYPE),
        None if xx => Outcome::default(), // XX and no key: nothing to do
        _ => {
            let value = db.get_or_insert(key, rq.now_ms, || Value::Zset(SortedSet::default()));
            let Value::Zset(zset) = value else {
                return reply::error(rq.out, WRONGTYPE);
            };
            let pairs = scores
                .iter()
                .enumerate()
                .map(|(pair, &score)| (score, rq.args.get(rq.bytes, first + 2 * pair + 1)));
            match add_all(zset, pairs, &options) {
                Some(outcome) => outcome,
                None => return reply::error(rq.out, "ERR resulting score is not a number (NaN)"),
            }
        }
    };
    if options.incr {
        if outcome.processed > 0 {
            reply::double(rq.out, outcome.last_score);
        } else {
            reply::nil(rq.out);
        }
    } else if options.ch {
        reply::int(rq.out, outcome.added + outcome.updated);
    } else {
        reply::int(rq.out, outcome.added);
    }
}

/// What ZADD did.
#[derive(Default)]
struct Outcome {
    added: i64,
    updated: i64,
    /// Pairs that were not skipped by NX, XX, GT or LT.
    processed: i64,
    /// The score the last processed member ended with (INCR's reply).
    last_score: f64,
}

/// Redis's `zsetAdd` for each pair in turn; `None` if an increment makes a
/// score NaN (`inf` plus `-inf`).
fn add_all<'m>(
    zset: &mut SortedSet,
    pairs: impl Iterator<Item = (f64, &'m [u8])>,
    options: &Options,
) -> Option<Outcome> {
    let Options {
        nx,
        xx,
        gt,
        lt,
        incr,
        ..
    } = *options;
    let mut outcome = Outcome::default();
    for (score, member) in pairs {
        let new_score = match zset.score(member) {
            Some(_) if nx => continue,
            Some(current) => {
                let score = if incr { score + current } else { score };
                if score.is_nan() {
                    return None;
                }
                if (lt && score >= current) || (gt && score <= current) {
                    continue;
                }
                if score != current {
                    outcome.updated += 1;
                }
                score
            }
            None if xx => continue,
            None => {
                outcome.added += 1;
                score
            }
        };
        zset.insert(member, Score(new_score));
        outcome.processed += 1;
        outcome.last_score = new_score;
    }
    Some(outcome)
}

/// A score as Redis's `getDoubleFromObject` reads it with `strtod`: the
/// whole argument, no leading space, no NaN, and no result out of range
/// (a finite number too large for a double, or one that rounds to zero).
/// Hexadecimal floats (`0x1p3`), which `strtod` takes, are read too.
pub fn parse_score(text: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(text).ok()?;
    if text.is_empty() || text.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let unsigned = text.trim_start_matches(['+', '-']);
    let value = if unsigned.len() > 2 && unsigned[..2].eq_ignore_ascii_case("0x") {
        parse_hex_float(text)?
    } else {
        if text.len() - unsigned.len() > 1 {
            return None; // "+-1", "--1"
        }
        text.parse::<f64>().ok()?
    };
    let is_inf_literal = matches!(unsigned.to_ascii_lowercase().as_str(), "inf" | "infinity");
    let overflowed = value.is_infinite() && !is_inf_literal;
    let mantissa = unsigned.split(['e', 'E', 'p', 'P']).next().unwrap_or("");
    let has_nonzero_digit = mantissa
        .trim_start_matches(['0', 'x', 'X'])
        .bytes()
        .any(|b| b.is_ascii_hexdigit() && b != b'0');
    let underflowed = value == 0.0 && has_nonzero_digit;
    (!value.is_nan() && !overflowed && !underflowed).then_some(value)
}

/// `[+-]0x` hex digits with an optional `.`, then an optional `p` and a
/// decimal power of two, as `strtod` reads them.
fn parse_hex_float(text: &str) -> Option<f64> {
    let (negative, rest) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let rest = &rest[2..];
    let (digits, power) = match rest.find(['p', 'P']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut value = 0.0f64;
    for digit in whole.chars().chain(fraction.chars()) {
        value = value * 16.0 + f64::from(digit.to_digit(16)?);
    }
    let exponent = power.checked_sub(4 * i32::try_from(fraction.len()).ok()?)?;
    let value = value * 2f64.powi(exponent);
    Some(if negative { -value } else { value })
}

/// `ZPOPMIN key [count]`: member, score pairs, lowest first.
pub fn zpopmin(db: &mut Db, rq: &mut Request<'_>) {
    let count = match rq.argc() {
        2 => 1,
        3 => match positive_count(rq, 2) {
            Some(n) => n,
            None => return,
        },
        _ => return reply::error(rq.out, SYNTAX),
    };
    if count == 0 {
        return reply::array(rq.out, 0);
    }
    let key = rq.args.get(rq.bytes, 1);
    let zset = match db.get(key, rq.now_ms) {
        None => return reply::array(rq.out, 0),
        Some(Value::Zset(zset)) => zset,
        Some(_) => return reply::error(rq.out, WRONGTYPE),
    };
    let n = count.min(zset.scores.len());
    reply::array(rq.out, 2 * n);
    for _ in 0..n {
        if let Some((score, member)) = zset.pop_min() {
            reply::bulk(rq.out, &member);
            reply::double(rq.out, score.0);
        }
    }
    db.drop_if_empty(key);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_read_as_strtod_reads_them() {
        for (text, value) in [
            ("1", Some(1.0)),
            ("-2.5", Some(-2.5)),
            ("+.5", Some(0.5)),
            ("5.", Some(5.0)),
            ("1e3", Some(1000.0)),
            ("inf", Some(f64::INFINITY)),
            ("-Infinity", Some(f64::NEG_INFINITY)),
            ("0x10", Some(16.0)),
            ("0x1p3", Some(8.0)),
            ("-0x1.8p1", Some(-3.0)),
            ("0e0", Some(0.0)),
            ("1e400", None),
            ("1e-400", None),
            ("nan", None),
            (" 1", None),
            ("1 ", None),
            ("", None),
            ("+-1", None),
            ("1e", None),
            ("0x", None),
        ] {
            assert_eq!(parse_score(text.as_bytes()), value, "{text}");
        }
    }
}
