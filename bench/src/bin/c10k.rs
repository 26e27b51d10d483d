//! The C10K curves: what idle connections cost each backend.
//!
//! ```text
//! cargo build --release --examples
//! cargo build --release -p selectloop-bench --bins
//! target/release/c10k            # medians of 3 (about 10 minutes)
//! target/release/c10k --quick    # one repeat, shorter runs
//! ```
//!
//! For every backend of `echo_server` (epoll, poll, select, uring), with raw mio
//! as the epoll anchor and the seed's Python `select()` server as the
//! select anchor: N idle connections are opened and held (N = 0, 100, 900,
//! 1,000, 5,000, 10,000), then 50 active clients ping-pong 64-byte
//! messages. Measured: the server's CPU time per message
//! (/proc/PID/stat), the round trip's p99 (the load generator's
//! histogram), and the server's system calls per message and per loop turn
//! (perf: `raw_syscalls:sys_enter`, and the turns are its calls to
//! epoll_wait, poll, select or io_uring_enter).
//!
//! The server runs on CPU 0, the load generator on CPU 1. select cannot
//! watch a descriptor numbered 1,024 or more: past that the select backend
//! refuses connections and the Python server stops, and the rows say so.
//!
//! Results go to docs/benchmarks/c10k.csv, docs/benchmarks/c10k-*.svg and
//! the table between the `c10k` markers in docs/benchmarks.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use selectloop_bench::report::{
    env_date, machine, median_min_max, plot_lines, release_dir, repo_root, write_between_markers,
    YScale,
};
use selectloop_bench::servers::{
    count_events, open_fds, raise_fd_limit, require_built, run_load, stop, Load, Run, Server,
};

/// Active clients, as the issue's curve asks: 50 ping-pong clients.
const ACTIVE: usize = 50;

/// The system calls that wait for events: one per turn of any of the loops
/// measured (glibc may issue select as pselect6, poll as ppoll; the
/// io_uring backend waits, and submits, in io_uring_enter).
const WAITS: [&str; 7] = [
    "syscalls:sys_enter_epoll_wait",
    "syscalls:sys_enter_epoll_pwait",
    "syscalls:sys_enter_poll",
    "syscalls:sys_enter_ppoll",
    "syscalls:sys_enter_select",
    "syscalls:sys_enter_pselect6",
    "syscalls:sys_enter_io_uring_enter",
];

struct Settings {
    idle: Vec<usize>,
    repeats: usize,
    duration: f64,
    warmup: f64,
}

/// One measured point.
#[derive(Clone, Debug, Default)]
struct Sample {
    /// Idle connections the server still held when the load ran.
    held: usize,
    run: Run,
    syscalls_per_msg: f64,
    syscalls_per_turn: f64,
    /// Why the point has no figures (empty when it has).
    failure: String,
}

/// What `--help` prints: the commands of the doc above.
const USAGE: &str = "cargo build --release --examples\n\
cargo build --release -p selectloop-bench --bins\n\
target/release/c10k            # medians of 3 (about 10 minutes)\n\
target/release/c10k --quick    # one repeat, shorter runs\n\
";

fn main() -> io::Result<()> {
    let quick = !selectloop_bench::switches(USAGE, &["--quick"]).is_empty();
    let settings = Settings {
        idle: vec![0, 100, 900, 1000, 5000, 10_000],
        repeats: if quick { 1 } else { 3 },
        duration: if quick { 1.0 } else { 2.0 },
        warmup: if quick { 0.2 } else { 0.5 },
    };
    raise_fd_limit(65_536);
    let root = repo_root()?;
    let release = release_dir()?;
    let loadgen = release.join("loadgen");
    let echo = release.join("examples/echo_server");
    let backend = |name, kind| {
        Server::announcing(
            name,
            echo.clone(),
            &[
                "--codec",
                "chunks",
                "--backend",
                kind,
                "--max-connections",
                "20000",
            ],
        )
    };
    let mut servers = vec![
        backend("selectloop epoll", "epoll"),
        backend("selectloop poll", "poll"),
        backend("selectloop select", "select"),
        backend("selectloop uring", "uring"),
        Server::announcing("raw mio (epoll)", release.join("mio_echo"), &[]),
    ];
    require_built(servers.iter().map(|s| s.program.as_path()))?;
    // Python select() stops at FD_SETSIZE; it is tried up to 1,000 idle,
    // the point where it does.
    servers.extend(Server::python_select(&root, "Python select() (seed)"));

    let mut csv = String::from(
        "server,idle,held_idle,repeat,msgs_per_s,p50_us,p99_us,errors,total_msgs,server_cpu_s,\
         cpu_us_per_msg,syscalls_per_msg,syscalls_per_turn,failure\n",
    );
    let mut samples: BTreeMap<(usize, &'static str), Vec<Sample>> = BTreeMap::new();
    for &idle in &settings.idle {
        for repeat in 0..settings.repeats {
            for server in &servers {
                if idle > server.max_connections {
                    continue;
                }
                let sample = measure(server, &loadgen, idle, &settings);
                let s = &sample;
                eprintln!(
                    "{:>24} idle {idle:>6} (held {:>6}) #{repeat}: {:>8.0} msg/s  p99 {:>6} us  \
                     cpu {:.2} us/msg  {:.2} syscalls/msg  {:.1} syscalls/turn {}",
                    server.name,
                    s.held,
                    s.run.msgs_per_s,
                    s.run.p99_us,
                    s.run.cpu_per_msg_us(),
                    s.syscalls_per_msg,
                    s.syscalls_per_turn,
                    s.failure
                );
                let _ = writeln!(
                    csv,
                    "{},{idle},{},{repeat},{:.0},{},{},{},{},{:.3},{:.3},{:.3},{:.2},{}",
                    server.name,
                    s.held,
                    s.run.msgs_per_s,
                    s.run.p50_us,
                    s.run.p99_us,
                    s.run.errors,
                    s.run.total_msgs,
                    s.run.cpu_s,
                    s.run.cpu_per_msg_us(),
                    s.syscalls_per_msg,
                    s.syscalls_per_turn,
                    s.failure.replace(',', ";")
                );
                samples.entry((idle, server.name)).or_default().push(sample);
            }
        }
    }
    let out_dir = root.join("docs/benchmarks");
    fs::create_dir_all(&out_dir)?;
    fs::write(out_dir.join("c10k.csv"), &csv)?;
    let names: Vec<&'static str> = servers.iter().map(|s| s.name).collect();
    let table = table(&names, &samples, &settings, quick);
    write_between_markers(&root.join("docs/benchmarks.md"), "c10k", &table)?;
    print!("{table}");
    plot(
        &out_dir.join("c10k-cpu.svg"),
        "server CPU per message, 50 active clients beside N idle",
        "CPU µs per message",
        &names,
        &samples,
        |s| s.run.cpu_per_msg_us(),
    )?;
    plot(
        &out_dir.join("c10k-p99.svg"),
        "p99 round trip, 50 active clients beside N idle",
        "p99 latency (µs)",
        &names,
        &samples,
        |s| s.run.p99_us,
    )?;
    eprintln!("wrote docs/benchmarks/c10k.csv, docs/benchmarks/c10k-*.svg, docs/benchmarks.md");
    Ok(())
}

/// Starts `server`, holds `idle` connections open, and measures 50 active
/// clients beside them.
fn measure(server: &Server, loadgen: &Path, idle: usize, settings: &Settings) -> Sample {
    let (child, addr) = match server.start_on(0) {
        Ok(started) => started,
        Err(e) => {
            return Sample {
                failure: format!("did not start: {e}"),
                ..Sample::default()
            }
        }
    };
    let pid = child.id();
    let sample = match hold_idle(pid, addr, idle) {
        Ok((held, clients)) => {
            let mut sample = load_beside(server, loadgen, pid, addr, settings);
            sample.held = held;
            // The seed's server dies when a client leaves with an answer
            // due, as the load generator's clients do at the end: only a
            // death during the run spoils the point.
            if !sample.failure.is_empty() && !is_alive(pid) {
                sample.failure = "the server exited".into();
            }
            release(clients);
            sample
        }
        Err(e) => Sample {
            failure: e.to_string(),
            ..Sample::default()
        },
    };
    stop(child);
    sample
}

/// Opens `count` connections and waits until the server's descriptor count
/// settles; returns how many of them it still holds.
fn hold_idle(pid: u32, addr: SocketAddr, count: usize) -> io::Result<(usize, Vec<TcpStream>)> {
    thread::sleep(Duration::from_millis(100));
    let base = open_fds(pid)?;
    let mut clients = Vec::with_capacity(count);
    for i in 0..count {
        let stream = TcpStream::connect(addr)
            .map_err(|e| io::Error::other(format!("idle connection {i}: {e}")))?;
        clients.push(stream);
    }
    // Settled: unchanged for 300 ms, at most 30 s.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = (open_fds(pid)?, Instant::now());
    while Instant::now() < deadline && last.1.elapsed() < Duration::from_millis(300) {
        thread::sleep(Duration::from_millis(50));
        let now = open_fds(pid)?;
        if now != last.0 {
            last = (now, Instant::now());
        }
    }
    Ok((last.0.saturating_sub(base), clients))
}

/// Runs the 50 active clients, counting the server's system calls and
/// loop turns meanwhile.
fn load_beside(
    server: &Server,
    loadgen: &Path,
    pid: u32,
    addr: SocketAddr,
    settings: &Settings,
) -> Sample {
    let load = Load {
        connections: ACTIVE,
        pipeline: 1,
        size: 64,
        duration: settings.duration,
        warmup: settings.warmup,
    };
    let mut events = vec!["raw_syscalls:sys_enter"];
    events.extend(WAITS);
    match count_events(pid, &events, || run_load(loadgen, server, pid, addr, load)) {
        Ok((run, counts)) => {
            let turns: f64 = counts[1..].iter().sum();
            let failure = if run.errors > 0 || run.total_msgs == 0 {
                format!("{} errors", run.errors)
            } else {
                String::new()
            };
            Sample {
                syscalls_per_msg: counts[0] / run.total_msgs.max(1) as f64,
                syscalls_per_turn: counts[0] / turns.max(1.0),
                run,
                failure,
                ..Sample::default()
            }
        }
        Err(e) => Sample {
            failure: plain(&e.to_string()).to_string(),
            ..Sample::default()
        },
    }
}

/// The load generator's reason in plain words: the message inside its
/// `Debug`-printed error (`... error: "server closed a connection" }`).
fn plain(text: &str) -> &str {
    let line = text.lines().next().unwrap_or("");
    ["error: \"", "message: \""]
        .iter()
        .find_map(|key| {
            let start = line.find(key)? + key.len();
            let len = line[start..].find('"')?;
            Some(&line[start..start + len])
        })
        .unwrap_or(line)
}

/// Not exited (an exited child not yet reaped is a zombie, state `Z`).
fn is_alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next());
        !matches!(state, Some("Z" | "X"))
    })
}

/// Resets the idle connections instead of closing them: no TIME_WAIT left
/// behind by the thousands.
fn release(clients: Vec<TcpStream>) {
    for client in &clients {
        let _ = socket2::SockRef::from(client).set_linger(Some(Duration::ZERO));
    }
}

/// The median of the samples that have figures, with their count.
fn median(samples: &[Sample], field: impl Fn(&Sample) -> f64) -> Option<f64> {
    let mut values: Vec<f64> = samples
        .iter()
        .filter(|s| s.failure.is_empty())
        .map(field)
        .collect();
    (!values.is_empty()).then(|| median_min_max(&mut values).0)
}

fn table(
    names: &[&'static str],
    samples: &BTreeMap<(usize, &'static str), Vec<Sample>>,
    settings: &Settings,
    quick: bool,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Measured {} on {}; {} per point ({} s of load after {} s of warm-up){}.\n",
        env_date(),
        machine(),
        if settings.repeats > 1 {
            format!("median of {}", settings.repeats)
        } else {
            "one run".into()
        },
        settings.duration,
        settings.warmup,
        if quick { ", `--quick`" } else { "" }
    );
    let _ = writeln!(
        out,
        "| idle | server | idle held | msgs/s | p99 µs | CPU µs/msg | syscalls/msg | syscalls/turn |"
    );
    let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---:|");
    for &idle in &settings.idle {
        for &name in names {
            let Some(list) = samples.get(&(idle, name)) else {
                continue;
            };
            let held = list.iter().map(|s| s.held).max().unwrap_or(0);
            match median(list, |s| s.run.msgs_per_s) {
                Some(msgs) => {
                    let m = |f: fn(&Sample) -> f64| median(list, f).unwrap_or(0.0);
                    let _ = writeln!(
                        out,
                        "| {idle} | {name} | {held} | {msgs:.0} | {:.0} | {:.2} | {:.2} | {:.1} |",
                        m(|s| s.run.p99_us),
                        m(|s| s.run.cpu_per_msg_us()),
                        m(|s| s.syscalls_per_msg),
                        m(|s| s.syscalls_per_turn),
                    );
                }
                None => {
                    let why = list.last().map_or("", |s| s.failure.as_str());
                    let _ = writeln!(out, "| {idle} | {name} | {held} | failed: {why} | | | | |");
                }
            }
        }
    }
    out
}

/// One line per server: the median of `field` against the connections the
/// server held (idle held plus the 50 active), on log axes' x.
fn plot(
    path: &Path,
    title: &str,
    y_label: &str,
    names: &[&'static str],
    samples: &BTreeMap<(usize, &'static str), Vec<Sample>>,
    field: fn(&Sample) -> f64,
) -> io::Result<()> {
    let series: Vec<(&'static str, Vec<(f64, f64)>)> = names
        .iter()
        .map(|&name| {
            let points = samples
                .iter()
                .filter(|((_, n), _)| *n == name)
                .filter_map(|((idle, _), list)| {
                    median(list, field).map(|y| ((*idle + ACTIVE) as f64, y))
                })
                .collect();
            (name, points)
        })
        .filter(|(_, p): &(_, Vec<_>)| !p.is_empty())
        .collect();
    plot_lines(
        path,
        title,
        "connections held (idle + 50 active)",
        y_label,
        &series,
        YScale::Log,
    )
}
