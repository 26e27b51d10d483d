//! `INFO [section ...]`: what `redis-cli info` and monitoring tools read,
//! in Redis's own layout (`# Section` lines, `field:value` lines, a blank
//! line between sections), for the sections this server can fill honestly:
//! server, clients, memory, stats and keyspace.

use std::fmt::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::Request;
use crate::db::Db;
use crate::resp::reply;

/// The server-wide figures INFO reports, kept by the handler.
#[derive(Debug)]
pub struct ServerInfo {
    pub started: Instant,
    pub port: u16,
    /// The reactor's backend (`epoll`, `poll`, `select`, `uring`): Redis's
    /// `multiplexing_api`.
    pub multiplexing_api: &'static str,
    pub total_connections: u64,
    pub total_commands: u64,
}

const SECTIONS: [&str; 5] = ["server", "clients", "memory", "stats", "keyspace"];

pub fn info(db: &mut Db, rq: &mut Request<'_>) {
    let mut wanted: Vec<&str> = Vec::new();
    for i in 1..rq.argc() {
        let asked = String::from_utf8_lossy(rq.option(i)).to_ascii_lowercase();
        match asked.as_str() {
            "default" | "all" | "everything" => wanted.extend(SECTIONS),
            name => wanted.extend(SECTIONS.iter().filter(|s| **s == name)),
        }
    }
    if rq.argc() == 1 {
        wanted.extend(SECTIONS);
    }
    let mut text = String::new();
    for section in SECTIONS.iter().filter(|s| wanted.contains(s)) {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        match *section {
            "server" => server(&mut text, rq.server),
            "clients" => clients(&mut text, rq.clients.len()),
            "memory" => memory(&mut text),
            "stats" => stats(&mut text, rq.server, db),
            _ => keyspace(&mut text, db),
        }
    }
    reply::bulk(rq.out, text.as_bytes());
}

fn server(text: &mut String, info: &ServerInfo) {
    let uptime = info.started.elapsed().as_secs();
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.as_micros());
    let _ = write!(
        text,
        "# Server\r\nredis_version:{}\r\nredis_mode:standalone\r\nos:{}\r\n\
         arch_bits:{}\r\nmultiplexing_api:{}\r\nprocess_id:{}\r\ntcp_port:{}\r\n\
         server_time_usec:{now_us}\r\nuptime_in_seconds:{uptime}\r\n\
         uptime_in_days:{}\r\nhz:10\r\n",
        super::server::FOLLOWS_VERSION,
        os_name(),
        usize::BITS,
        info.multiplexing_api,
        std::process::id(),
        info.port,
        uptime / 86_400,
    );
}

fn clients(text: &mut String, connected: usize) {
    let _ = write!(
        text,
        "# Clients\r\nconnected_clients:{connected}\r\nblocked_clients:0\r\n"
    );
}

fn memory(text: &mut String) {
    // The process's resident memory: this server has no allocator
    // statistics, so Redis's `used_memory` and `used_memory_rss` are one.
    let rss = resident_bytes();
    let _ = write!(
        text,
        "# Memory\r\nused_memory:{rss}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\n\
         maxmemory:0\r\nmaxmemory_policy:noeviction\r\nmem_allocator:libc\r\n",
        human(rss)
    );
}

fn stats(text: &mut String, info: &ServerInfo, db: &Db) {
    let _ = write!(
        text,
        "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
         expired_keys:{}\r\n",
        info.total_connections, info.total_commands, db.expired
    );
}

fn keyspace(text: &mut String, db: &Db) {
    text.push_str("# Keyspace\r\n");
    if db.len() > 0 {
        let _ = write!(
            text,
            "db0:keys={},expires={},avg_ttl=0\r\n",
            db.len(),
            db.with_deadline()
        );
    }
}

/// Redis's `bytesToHuman`: `1023B`, `1.50K`, `12.00M`, `2.00G`.
fn human(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")];
    for (size, unit) in UNITS {
        if bytes >= size {
            return format!("{:.2}{unit}", bytes as f64 / size as f64);
        }
    }
    format!("{bytes}B")
}

/// Windows has no `uname`: the system's and the machine's names.
#[cfg(windows)]
fn os_name() -> String {
    format!("Windows {}", std::env::consts::ARCH)
}

/// `uname -srm`, as Redis's `os` field: `Linux 6.1.0 x86_64`.
#[cfg(unix)]
fn os_name() -> String {
    // SAFETY: uname fills the struct it is given, which is zeroed and
    // large enough; its fields are NUL-terminated strings.
    let mut name: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut name) } != 0 {
        return std::env::consts::OS.to_string();
    }
    let field = |chars: &[libc::c_char]| {
        let bytes: Vec<u8> = chars
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    format!(
        "{} {} {}",
        field(&name.sysname),
        field(&name.release),
        field(&name.machine)
    )
}

/// The process's resident set: not read on Windows (0).
#[cfg(windows)]
fn resident_bytes() -> u64 {
    0
}

/// The process's resident set, from `/proc/self/statm` (0 where there is
/// no such file).
#[cfg(unix)]
fn resident_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    // SAFETY: sysconf only reads a system setting.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * u64::try_from(page).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn sizes_read_as_redis_writes_them() {
        assert_eq!(human(1023), "1023B");
        assert_eq!(human(1536), "1.50K");
        assert_eq!(human(12 << 20), "12.00M");
        assert_eq!(human(2 << 30), "2.00G");
    }
}
