//! Latency of one busy client beside many idle connections, while the
//! timeout sweep runs: what a sweep that walks every connection at once
//! costs the clients that are busy, against one cut into slices.
//!
//! ```text
//! cargo build --release --examples
//! cargo build --release -p selectloop-bench --bins
//! target/release/idle_sweep                 # 100,000 idle connections
//! target/release/idle_sweep --idle 20000    # fewer
//! target/release/idle_sweep --before PATH   # an older echo_server beside this one
//! ```
//!
//! Each server is `echo_server` with a 10-minute idle timeout (so a sweep
//! pass every second, and nobody is closed), pinned to CPU 0. The idle
//! connections are opened from 127.0.0.1 to 127.0.0.4 (one source address
//! holds about 28,000 ports). Then, first, nothing happens for 10 seconds
//! and `perf stat -e task-clock` takes the server's CPU time: ten sweep
//! passes and their wake-ups. Then the load generator on CPU 1 runs one
//! ping-pong connection of 64-byte messages for 20 seconds: 20 passes. The process raises its descriptor limit (the server inherits
//! it); where the hard limit cannot be raised (no `CAP_SYS_RESOURCE`), it
//! opens as many idle connections as the limit allows and says so.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use selectloop_bench::report::release_dir;
use selectloop_bench::servers::{
    count_events, open_fds, require_built, run_load, stop, Load, Server,
};
use socket2::{Domain, SockAddr, Socket, Type};

const USAGE: &str = "\
idle_sweep: one ping-pong client's latency beside many idle connections\n\
\n\
target/release/idle_sweep [--idle N] [--duration SECONDS] [--before ECHO_SERVER]\n";

fn main() -> io::Result<()> {
    let mut idle = 100_000usize;
    let mut duration = 20.0f64;
    let mut before: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next().unwrap_or_else(|| {
                eprint!("{arg} needs a value\n\n{USAGE}");
                std::process::exit(2)
            })
        };
        match arg.as_str() {
            "--idle" => idle = value().parse().expect("--idle N"),
            "--duration" => duration = value().parse().expect("--duration SECONDS"),
            "--before" => before = Some(PathBuf::from(value())),
            "--help" | "-h" => {
                print!("{USAGE}");
                return Ok(());
            }
            other => {
                eprint!("unknown argument {other:?}\n\n{USAGE}");
                std::process::exit(2);
            }
        }
    }
    let allowed = raise_fd_limit(idle as u64 + 1024);
    if (allowed as usize) < idle + 1024 {
        let fitting = (allowed as usize).saturating_sub(1024);
        eprintln!(
            "idle_sweep: the descriptor limit is {allowed} and cannot be raised here \
             (no CAP_SYS_RESOURCE): {fitting} idle connections instead of {idle}"
        );
        idle = fitting;
    }
    let release = release_dir()?;
    let loadgen = release.join("loadgen");
    let echo = release.join("examples/echo_server");
    require_built([loadgen.as_path(), echo.as_path()])?;
    let args = ["--idle-timeout-ms", "600000", "--max-connections", "200000"];
    let mut servers = vec![];
    if let Some(path) = before {
        servers.push(Server::announcing("echo_server (before)", path, &args));
    }
    servers.push(Server::announcing("echo_server", echo, &args));

    println!(
        "| server | idle connections | CPU per 10 s, no traffic | msgs/s | p50 us | p99 us | p99.9 us | p99.99 us | max us |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for server in &servers {
        for count in [0, idle] {
            let (child, addr) = server.start_on(0)?;
            let pid = child.id();
            let clients = match open_idle(addr, count, pid) {
                Ok(clients) => clients,
                Err(e) => {
                    stop(child);
                    return Err(e);
                }
            };
            // With no traffic the loop's only work is the sweep (and its
            // wake-ups): its CPU time over 10 s is ten passes.
            let quiet = count_events(pid, &["task-clock"], || {
                std::thread::sleep(Duration::from_secs(10));
                Ok(())
            });
            let load = Load {
                connections: 1,
                pipeline: 1,
                size: 64,
                duration,
                warmup: 1.0,
            };
            let run = run_load(&loadgen, server, pid, addr, load);
            stop(child);
            for client in &clients {
                // Reset rather than close: no TIME_WAIT left by the thousands.
                let _ = socket2::SockRef::from(client).set_linger(Some(Duration::ZERO));
            }
            drop(clients);
            let run = run?;
            let cpu_ms = quiet.map_or(f64::NAN, |(_, counts)| counts[0]);
            println!(
                "| {} | {count} | {cpu_ms:.2} ms | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
                server.name,
                run.msgs_per_s,
                run.p50_us,
                run.p99_us,
                run.p999_us,
                run.p9999_us,
                run.max_us
            );
        }
    }
    Ok(())
}

/// Opens `count` connections to `addr` from 127.0.0.1 up, and waits until
/// the server (`pid`) holds a descriptor for each.
fn open_idle(addr: SocketAddr, count: usize, pid: u32) -> io::Result<Vec<TcpStream>> {
    const PER_SOURCE: usize = 25_000;
    let mut clients = Vec::with_capacity(count);
    for i in 0..count {
        let source: SocketAddr = ([127, 0, 0, 1 + (i / PER_SOURCE) as u8], 0).into();
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        socket.bind(&SockAddr::from(source))?;
        socket
            .connect_timeout(&SockAddr::from(addr), Duration::from_secs(5))
            .map_err(|e| io::Error::other(format!("idle connection {i}: {e}")))?;
        clients.push(TcpStream::from(socket));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while open_fds(pid)? < count {
        if Instant::now() > deadline {
            return Err(io::Error::other(
                "the server did not accept every connection",
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(clients)
}

/// Windows has no descriptor limit: `wanted` is in force.
#[cfg(not(unix))]
fn raise_fd_limit(wanted: u64) -> u64 {
    wanted
}

/// Raises this process's descriptor limit (children inherit it) to
/// `wanted`, or as far as the hard limit allows when it cannot be raised;
/// returns the limit in force.
#[cfg(unix)]
fn raise_fd_limit(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: wanted as libc::rlim_t,
        rlim_max: wanted as libc::rlim_t,
    };
    // SAFETY: getrlimit and setrlimit read and write only the struct given.
    unsafe {
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0
            && libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    // `rlim_t` is u64 on Linux and i64 on the BSDs.
    #[allow(clippy::useless_conversion, clippy::unnecessary_fallible_conversions)]
    u64::try_from(limit.rlim_cur).unwrap_or(0)
}
