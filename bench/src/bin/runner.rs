//! The benchmark runner: every server against the same load, in one run.
//!
//! ```text
//! cargo build --release --examples
//! cargo build --release -p selectloop-bench --bins
//! target/release/runner            # the full matrix (about 20 minutes)
//! target/release/runner --quick    # one short repeat of each point
//! target/release/runner --reuse-throughput   # memory and system calls only
//! ```
//!
//! Each server is pinned to CPU 0 and the load generator to CPU 1
//! (`taskset`), so they do not fight for a core. For every point of the
//! matrix (connections 1, 50, 500, 5,000; pipeline 1 and 16; messages of
//! 64 B and 4 KiB) each server is run three times; the tables give the
//! median with the minimum and maximum. The server's CPU time comes from
//! /proc/PID/stat, its system calls from `perf stat -e raw_syscalls:sys_enter`,
//! its memory per idle connection from VmRSS with 1,000 to 10,000 idle
//! connections open, and (run as root) the kernel's share of them from
//! the growth of its slab caches (/proc/slabinfo).
//!
//! Results go to docs/benchmarks/results.csv, docs/benchmarks/*.svg, and
//! the tables between the markers in docs/benchmarks.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::TcpStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use selectloop_bench::report::{
    env_date, machine, median_min_max, plot_lines, release_dir, repo_root, write_between_markers,
    YScale,
};
use selectloop_bench::servers::{
    count_events, open_fds, raise_fd_limit, require_built, rss_bytes, run_load, run_load_with,
    settled_slab_caches, stop, Generator, Load, Run, Server,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Point {
    connections: usize,
    pipeline: usize,
    size: usize,
}

struct Settings {
    duration: f64,
    warmup: f64,
    repeats: usize,
    connections: Vec<usize>,
    idle_counts: Vec<usize>,
}

/// One column of the system-call table: a pipeline depth and where the
/// load generator runs.
struct SyscallColumn {
    /// The column's name in syscalls-memory.csv.
    key: &'static str,
    title: &'static str,
    pipeline: usize,
    generator: Generator,
}

const SYSCALL_COLUMNS: [SyscallColumn; 3] = [
    SyscallColumn {
        key: "pipeline=1",
        title: "pipeline 1",
        pipeline: 1,
        generator: Generator {
            cpus: "1",
            threads: 1,
        },
    },
    SyscallColumn {
        key: "pipeline=16",
        title: "pipeline 16",
        pipeline: 16,
        generator: Generator {
            cpus: "1",
            threads: 1,
        },
    },
    // The server on CPU 0 shares it with one of the generator's threads.
    SyscallColumn {
        key: "pipeline=16;busy",
        title: "pipeline 16, busy",
        pipeline: 16,
        generator: Generator {
            cpus: "0-1",
            threads: 2,
        },
    },
];

/// What `--help` prints: the commands of the doc above.
const USAGE: &str = "cargo build --release --examples\n\
cargo build --release -p selectloop-bench --bins\n\
target/release/runner            # the full matrix (about 20 minutes)\n\
target/release/runner --quick    # one short repeat of each point\n\
target/release/runner --reuse-throughput   # memory and system calls only\n\
";

fn main() -> io::Result<()> {
    let switches = selectloop_bench::switches(USAGE, &["--quick", "--reuse-throughput"]);
    let quick = switches.iter().any(|a| a == "--quick");
    let settings = if quick {
        Settings {
            duration: 0.5,
            warmup: 0.2,
            repeats: 1,
            connections: vec![1, 50, 500],
            idle_counts: vec![1000],
        }
    } else {
        Settings {
            duration: 2.0,
            warmup: 0.5,
            repeats: 3,
            connections: vec![1, 50, 500, 5000],
            idle_counts: vec![1000, 5000, 10_000],
        }
    };
    raise_fd_limit(65_536);
    let root = repo_root()?;
    let servers = servers(&root)?;
    let loadgen = release_dir()?.join("loadgen");
    let out_dir = root.join("docs/benchmarks");
    fs::create_dir_all(&out_dir)?;

    let mut points = Vec::new();
    for &connections in &settings.connections {
        for pipeline in [1, 16] {
            for size in [64, 4096] {
                points.push(Point {
                    connections,
                    pipeline,
                    size,
                });
            }
        }
    }

    // Throughput and latency.
    let mut csv = String::from(
        "server,connections,pipeline,size,repeat,msgs_per_s,p50_us,p99_us,p999_us,errors,total_msgs,server_cpu_s,cpu_us_per_msg,cpu_msgs\n",
    );
    let mut results: BTreeMap<(Point, &'static str), Vec<Run>> = BTreeMap::new();
    let reuse = switches.iter().any(|a| a == "--reuse-throughput");
    if reuse {
        // Only memory and system calls are measured again; the throughput
        // figures come from the last run's CSV.
        csv = fs::read_to_string(out_dir.join("results.csv"))?;
        load_csv(&csv, &servers, &mut results);
    }
    for &point in points.iter().filter(|_| !reuse) {
        for repeat in 0..settings.repeats {
            for server in &servers {
                if !serves(server, point) {
                    continue;
                }
                let run = match measure(server, &loadgen, point, &settings) {
                    Ok(run) => run,
                    Err(e) => {
                        eprintln!("{} at {point:?}: {e}", server.name);
                        continue;
                    }
                };
                eprintln!(
                    "{:>22} c={:<5} p={:<2} s={:<5} #{repeat}: {:>10.0} msg/s  p99 {:>6} us  cpu {:.2} us/msg",
                    server.name,
                    point.connections,
                    point.pipeline,
                    point.size,
                    run.msgs_per_s,
                    run.p99_us,
                    run.cpu_per_msg_us()
                );
                let _ = writeln!(
                    csv,
                    "{},{},{},{},{},{:.0},{},{},{},{},{},{:.3},{:.3},{}",
                    server.name,
                    point.connections,
                    point.pipeline,
                    point.size,
                    repeat,
                    run.msgs_per_s,
                    run.p50_us,
                    run.p99_us,
                    run.p999_us,
                    run.errors,
                    run.total_msgs,
                    run.cpu_s,
                    run.cpu_per_msg_us(),
                    run.cpu_msgs
                );
                results.entry((point, server.name)).or_default().push(run);
            }
        }
    }
    fs::write(out_dir.join("results.csv"), &csv)?;

    // System calls per message, at 50 connections. The share of
    // epoll_wait per message depends on timing, so the count is repeated
    // like the other figures, the servers taking turns so that drift in
    // the machine hits all alike; the median is kept.
    let mut counts: BTreeMap<(&'static str, &'static str), Vec<f64>> = BTreeMap::new();
    for column in SYSCALL_COLUMNS {
        let point = Point {
            connections: 50,
            pipeline: column.pipeline,
            size: 64,
        };
        for _ in 0..settings.repeats {
            for server in servers.iter().filter(|s| serves(s, point)) {
                match count_syscalls(server, &loadgen, point, column.generator, &settings) {
                    Ok(per_msg) => {
                        eprintln!(
                            "{:>22} {:<8}: {per_msg:.3} syscalls/msg",
                            server.name, column.key
                        );
                        counts
                            .entry((column.key, server.name))
                            .or_default()
                            .push(per_msg);
                    }
                    Err(e) => eprintln!("{} syscalls: {e}", server.name),
                }
            }
        }
    }
    let syscalls: BTreeMap<(&'static str, &'static str), f64> = counts
        .into_iter()
        .map(|(key, mut values)| (key, median_min_max(&mut values).0))
        .collect();

    // Memory per idle connection.
    let mut memory: BTreeMap<(usize, &'static str), f64> = BTreeMap::new();
    let mut kernel: BTreeMap<(usize, &'static str), f64> = BTreeMap::new();
    let mut grown: BTreeMap<(usize, &'static str), Vec<(String, f64)>> = BTreeMap::new();
    for &count in &settings.idle_counts {
        for server in &servers {
            if count > server.max_connections {
                continue;
            }
            match idle_memory(server, count) {
                Ok(Idle { rss, slab, grew }) => {
                    let slab_note = slab.map_or(String::new(), |s| format!(", kernel slab {s:.0}"));
                    eprintln!(
                        "{:>22} {count:>6} idle: {rss:.0} B/conn{slab_note}",
                        server.name
                    );
                    if !grew.is_empty() {
                        let caches: Vec<String> = grew
                            .iter()
                            .map(|(cache, b)| format!("{cache} {b:.0}"))
                            .collect();
                        eprintln!(
                            "{:>22} {count:>6} idle: most grown: {}",
                            "",
                            caches.join(", ")
                        );
                    }
                    memory.insert((count, server.name), rss);
                    if let Some(slab) = slab {
                        kernel.insert((count, server.name), slab);
                    }
                    grown.insert((count, server.name), grew);
                }
                Err(e) => eprintln!("{} with {count} idle connections: {e}", server.name),
            }
        }
    }

    let mut extra = String::from("measure,server,param,value\n");
    for ((column, name), value) in &syscalls {
        let _ = writeln!(extra, "syscalls_per_msg,{name},{column},{value:.4}");
    }
    for ((count, name), value) in &memory {
        let _ = writeln!(
            extra,
            "rss_bytes_per_idle_conn,{name},idle={count},{value:.0}"
        );
    }
    for ((count, name), value) in &kernel {
        let _ = writeln!(
            extra,
            "slab_bytes_per_idle_conn,{name},idle={count},{value:.0}"
        );
    }
    fs::write(out_dir.join("syscalls-memory.csv"), extra)?;

    let names: Vec<&'static str> = servers.iter().map(|s| s.name).collect();
    let memory = Memory {
        resident: memory,
        kernel,
        grown,
    };
    let tables = tables(&names, &points, &results, &syscalls, &memory, &settings);
    write_between_markers(&root.join("docs/benchmarks.md"), "results", &tables)?;
    plot_lines(
        &out_dir.join("throughput.svg"),
        "messages/s, pipeline 1, 64 B",
        "connections",
        "messages per second",
        &series(
            &names,
            &results,
            |p| p.pipeline == 1 && p.size == 64,
            |r| r.msgs_per_s,
        ),
        YScale::Linear,
    )?;
    plot_lines(
        &out_dir.join("throughput-pipelined.svg"),
        "messages/s, pipeline 16, 64 B",
        "connections",
        "messages per second",
        &series(
            &names,
            &results,
            |p| p.pipeline == 16 && p.size == 64,
            |r| r.msgs_per_s,
        ),
        YScale::Linear,
    )?;
    plot_lines(
        &out_dir.join("p99.svg"),
        "p99 latency, pipeline 1, 64 B",
        "connections",
        "p99 latency (µs)",
        &series(
            &names,
            &results,
            |p| p.pipeline == 1 && p.size == 64,
            |r| r.p99_us,
        ),
        YScale::Log,
    )?;
    let memory_series: Vec<(&'static str, Vec<(f64, f64)>)> = names
        .iter()
        .map(|&name| {
            let points = memory
                .resident
                .iter()
                .filter(|((_, n), _)| *n == name)
                .map(|((count, _), bytes)| (*count as f64, *bytes))
                .collect();
            (name, points)
        })
        .filter(|(_, p): &(_, Vec<_>)| !p.is_empty())
        .collect();
    plot_lines(
        &out_dir.join("memory.svg"),
        "resident memory per idle connection",
        "idle connections",
        "bytes per connection",
        &memory_series,
        YScale::Log,
    )?;
    eprintln!("wrote docs/benchmarks/results.csv, docs/benchmarks/*.svg, docs/benchmarks.md");
    Ok(())
}

fn serves(server: &Server, point: Point) -> bool {
    point.connections <= server.max_connections
        && (!server.only_ping_pong_64 || (point.pipeline == 1 && point.size == 64))
}

fn servers(root: &Path) -> io::Result<Vec<Server>> {
    let release = release_dir()?;
    let examples = release.join("examples");
    let announce = Server::announcing;
    let mut servers = vec![
        announce("raw mio", release.join("mio_echo"), &[]),
        announce(
            "selectloop echo_server",
            examples.join("echo_server"),
            &["--codec", "chunks"],
        ),
        announce(
            "selectloop echo_server (uring)",
            examples.join("echo_server"),
            &["--codec", "chunks", "--backend", "uring"],
        ),
        announce(
            "tokio current_thread",
            release.join("tokio_echo"),
            &["--threads", "1"],
        ),
        announce("monoio (io_uring)", release.join("monoio_echo"), &[]),
        announce(
            "tokio 2 workers",
            release.join("tokio_echo"),
            &["--threads", "2"],
        ),
        announce("thread per connection", release.join("thread_echo"), &[]),
        Server {
            greeting: 17,
            prefix: "response: ",
            only_ping_pong_64: true,
            ..announce(
                "selectloop select_server",
                examples.join("select_server"),
                &[],
            )
        },
    ];
    require_built(servers.iter().map(|s| s.program.as_path()))?;
    // The seed's algorithm in Python, if python3 exists.
    servers.extend(Server::python_select(root, "Python select() original"));
    Ok(servers)
}

fn load(point: Point, settings: &Settings) -> Load {
    Load {
        connections: point.connections,
        pipeline: point.pipeline,
        size: point.size,
        duration: settings.duration,
        warmup: settings.warmup,
    }
}

fn measure(server: &Server, loadgen: &Path, point: Point, settings: &Settings) -> io::Result<Run> {
    let (child, addr) = server.start_on(0)?;
    let run = run_load(loadgen, server, child.id(), addr, load(point, settings));
    stop(child);
    run
}

/// System calls the server makes per message, counted by perf's
/// `raw_syscalls:sys_enter` tracepoint over the whole load run.
fn count_syscalls(
    server: &Server,
    loadgen: &Path,
    point: Point,
    generator: Generator,
    settings: &Settings,
) -> io::Result<f64> {
    let (child, addr) = server.start_on(0)?;
    let pid = child.id();
    let counted = count_events(pid, &["raw_syscalls:sys_enter"], || {
        run_load_with(loadgen, server, pid, addr, load(point, settings), generator)
    });
    stop(child);
    let (run, counts) = counted?;
    Ok(counts[0] / run.total_msgs.max(1) as f64)
}

/// What an idle connection costs, in bytes.
struct Idle {
    /// The server's VmRSS with `count` connections open, less VmRSS with
    /// none, divided by `count`.
    rss: f64,
    /// The kernel's slab caches, grown the same way (both ends of each
    /// connection, since the clients are on the same machine): `None`
    /// where `/proc/slabinfo` cannot be read (not root).
    slab: Option<f64>,
    /// The caches that grew most, per connection, largest first: what
    /// tells one backend's kernel share from another's (an `epitem`, an
    /// io_uring request) beside the sockets' own.
    grew: Vec<(String, f64)>,
}

/// The memory tables: resident bytes, and the kernel's slab bytes, per
/// idle connection, by (idle count, server).
struct Memory {
    resident: BTreeMap<(usize, &'static str), f64>,
    kernel: BTreeMap<(usize, &'static str), f64>,
    /// The caches that grew most, by (idle count, server).
    grown: BTreeMap<(usize, &'static str), Vec<(String, f64)>>,
}

/// What `count` idle connections cost `server`, per connection.
fn idle_memory(server: &Server, count: usize) -> io::Result<Idle> {
    let (child, addr) = server.start_on(0)?;
    let pid = child.id();
    thread::sleep(Duration::from_millis(200));
    let slab_before = settled_slab_caches().ok();
    let before = rss_bytes(pid)?;
    let mut clients = Vec::with_capacity(count);
    for i in 0..count {
        // A server whose backlog is full (the Python one's is short) must
        // not hang the run: a connect it never takes fails after 5 s.
        match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(stream) => clients.push(stream),
            Err(e) => {
                stop(child);
                return Err(io::Error::other(format!("connection {i}: {e}")));
            }
        }
    }
    // Wait until the server holds a descriptor for each of them.
    let deadline = Instant::now() + Duration::from_secs(30);
    while open_fds(pid)? < count {
        if Instant::now() > deadline {
            stop(child);
            return Err(io::Error::other("server did not accept every connection"));
        }
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(500));
    let slab_after = settled_slab_caches().ok();
    let after = rss_bytes(pid)?;
    stop(child);
    for client in &clients {
        // Reset rather than close: no TIME_WAIT left behind by the thousands.
        let _ = socket2::SockRef::from(client).set_linger(Some(Duration::ZERO));
    }
    drop(clients);
    let per_connection =
        |before: u64, after: u64| after.saturating_sub(before) as f64 / count as f64;
    let mut grew = Vec::new();
    let mut slab = None;
    if let (Some(before), Some(after)) = (&slab_before, &slab_after) {
        let total = |caches: &BTreeMap<String, u64>| caches.values().sum::<u64>();
        slab = Some(per_connection(total(before), total(after)));
        for (cache, &bytes) in after {
            let growth = per_connection(before.get(cache).copied().unwrap_or(0), bytes);
            if growth >= 1.0 {
                grew.push((cache.clone(), growth));
            }
        }
        grew.sort_by(|a, b| b.1.total_cmp(&a.1));
        grew.truncate(8);
    }
    Ok(Idle {
        rss: per_connection(before, after),
        slab,
        grew,
    })
}

/// Reads the rows `main` writes to results.csv back into `results`.
fn load_csv(
    csv: &str,
    servers: &[Server],
    results: &mut BTreeMap<(Point, &'static str), Vec<Run>>,
) {
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 12 {
            continue;
        }
        let Some(server) = servers.iter().find(|s| s.name == f[0]) else {
            continue;
        };
        let num = |i: usize| f[i].parse::<f64>().unwrap_or(0.0);
        let point = Point {
            connections: num(1) as usize,
            pipeline: num(2) as usize,
            size: num(3) as usize,
        };
        let run = Run {
            msgs_per_s: num(5),
            p50_us: num(6),
            p99_us: num(7),
            p999_us: num(8),
            errors: num(9) as u64,
            total_msgs: num(10) as u64,
            cpu_s: num(11),
            // Older files lack the column: their CPU time covered the
            // whole run, every message.
            cpu_msgs: f.get(13).map_or(num(10), |_| num(13)) as u64,
            ..Run::default()
        };
        results.entry((point, server.name)).or_default().push(run);
    }
}

fn median_of(runs: &[Run], field: impl Fn(&Run) -> f64) -> Option<(f64, f64, f64)> {
    if runs.is_empty() {
        return None;
    }
    let mut values: Vec<f64> = runs.iter().map(field).collect();
    Some(median_min_max(&mut values))
}

fn series(
    names: &[&'static str],
    results: &BTreeMap<(Point, &'static str), Vec<Run>>,
    which: impl Fn(&Point) -> bool,
    field: impl Fn(&Run) -> f64 + Copy,
) -> Vec<(&'static str, Vec<(f64, f64)>)> {
    names
        .iter()
        .map(|&name| {
            let points = results
                .iter()
                .filter(|((point, n), _)| *n == name && which(point))
                .filter_map(|((point, _), runs)| {
                    median_of(runs, field).map(|(m, _, _)| (point.connections as f64, m))
                })
                .collect();
            (name, points)
        })
        .filter(|(_, p): &(_, Vec<_>)| !p.is_empty())
        .collect()
}

fn tables(
    names: &[&'static str],
    points: &[Point],
    results: &BTreeMap<(Point, &'static str), Vec<Run>>,
    syscalls: &BTreeMap<(&'static str, &'static str), f64>,
    memory: &Memory,
    settings: &Settings,
) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Run of {} on {} ({} repeats of {} s after {} s of warm-up; median, with min-max).\n",
        env_date(),
        machine(),
        settings.repeats,
        settings.duration,
        settings.warmup
    );
    let baseline = "raw mio";
    for (title, field, unit_scale) in [
        ("Messages per second", 0usize, 1.0),
        ("p99 latency (µs)", 1, 1.0),
        ("Server CPU per message (µs)", 2, 1.0),
    ] {
        let _ = writeln!(md, "### {title}\n");
        let _ = write!(md, "| connections | pipeline | size |");
        for name in names {
            let _ = write!(md, " {name} |");
        }
        let _ = writeln!(md);
        let _ = write!(md, "|---:|---:|---:|");
        for _ in names {
            let _ = write!(md, "---:|");
        }
        let _ = writeln!(md);
        for point in points {
            let _ = write!(
                md,
                "| {} | {} | {} |",
                point.connections, point.pipeline, point.size
            );
            let base = results
                .get(&(*point, baseline))
                .and_then(|runs| median_of(runs, |r| pick(r, field)).map(|(m, _, _)| m));
            for name in names {
                let cell = results
                    .get(&(*point, *name))
                    .and_then(|runs| median_of(runs, |r| pick(r, field)));
                match cell {
                    Some((median, min, max)) => {
                        let ratio = match (base, *name == baseline) {
                            (Some(b), false) if b > 0.0 => format!(" (×{:.2})", median / b),
                            _ => String::new(),
                        };
                        let _ = write!(
                            md,
                            " {}{ratio}<br>{}–{} |",
                            fmt_num(median * unit_scale),
                            fmt_num(min * unit_scale),
                            fmt_num(max * unit_scale)
                        );
                    }
                    None => {
                        let _ = write!(md, " – |");
                    }
                }
            }
            let _ = writeln!(md);
        }
        let _ = writeln!(md);
    }
    let _ = writeln!(
        md,
        "Ratios (×) are to raw mio at the same point, from the same run.\n"
    );

    let _ = writeln!(
        md,
        "### System calls per message (50 connections, 64 B; perf `raw_syscalls:sys_enter`)\n"
    );
    let _ = write!(md, "| server |");
    for column in SYSCALL_COLUMNS {
        let _ = write!(md, " {} |", column.title);
    }
    let _ = write!(md, "\n|---|");
    for _ in SYSCALL_COLUMNS {
        let _ = write!(md, "---:|");
    }
    let _ = writeln!(md);
    for name in names {
        let _ = write!(md, "| {name} |");
        for column in SYSCALL_COLUMNS {
            let cell = syscalls
                .get(&(column.key, *name))
                .map_or("–".into(), |v| format!("{v:.3}"));
            let _ = write!(md, " {cell} |");
        }
        let _ = writeln!(md);
    }
    let _ = writeln!(
        md,
        "\nBusy: the load generator runs two threads on both CPUs, one of them \
         beside the server, so the server finds work waiting whenever it runs \
         and each `epoll_wait` returns many sockets, as on a machine where the \
         load comes from more cores than the server has. In the other columns \
         the server on its own CPU is faster than the one-thread client, \
         sleeps in `epoll_wait` after one or two sockets, and that wait is \
         most of what it spends above one read and one write per burst.\n"
    );

    memory_table(
        &mut md,
        "Resident memory per idle connection (bytes)",
        names,
        &memory.resident,
    );
    if !memory.kernel.is_empty() {
        let _ = writeln!(
            md,
            "\nThe kernel's share, which VmRSS does not count: its slab caches \
             (`/proc/slabinfo`, active objects times their size, all processes) \
             grown by the same idle connections, both ends of each (the clients \
             run on the same machine; their sockets cost the same whatever the \
             server), so compare servers by their difference.\n"
        );
        memory_table(
            &mut md,
            "Kernel memory per idle connection (slab bytes, both ends)",
            names,
            &memory.kernel,
        );
        // Which caches grew, at the largest count measured: the sockets'
        // own (TCP, inodes, files) on every server, and what each backend
        // or runtime adds to them.
        if let Some(&(most, _)) = memory.grown.keys().max() {
            let _ = writeln!(
                md,
                "\nThe caches that grew most with {most} idle connections (bytes per connection):\n"
            );
            for name in names {
                if let Some(grew) = memory.grown.get(&(most, *name)).filter(|g| !g.is_empty()) {
                    let caches: Vec<String> = grew
                        .iter()
                        .map(|(cache, bytes)| format!("`{cache}` {bytes:.0}"))
                        .collect();
                    let _ = writeln!(md, "- {name}: {}", caches.join(", "));
                }
            }
        }
    }
    md
}

/// A table of bytes per idle connection: a row per server, a column per
/// idle count.
fn memory_table(
    md: &mut String,
    title: &str,
    names: &[&'static str],
    bytes: &BTreeMap<(usize, &'static str), f64>,
) {
    let counts: Vec<usize> = {
        let mut c: Vec<usize> = bytes.keys().map(|(count, _)| *count).collect();
        c.sort_unstable();
        c.dedup();
        c
    };
    let _ = writeln!(md, "### {title}\n");
    let _ = write!(md, "| server |");
    for count in &counts {
        let _ = write!(md, " {count} idle |");
    }
    let _ = writeln!(md);
    let _ = write!(md, "|---|");
    for _ in &counts {
        let _ = write!(md, "---:|");
    }
    let _ = writeln!(md);
    for name in names {
        let _ = write!(md, "| {name} |");
        for count in &counts {
            let cell = bytes
                .get(&(*count, *name))
                .map_or("–".into(), |v| format!("{v:.0}"));
            let _ = write!(md, " {cell} |");
        }
        let _ = writeln!(md);
    }
}

fn pick(run: &Run, field: usize) -> f64 {
    match field {
        0 => run.msgs_per_s,
        1 => run.p99_us,
        _ => run.cpu_per_msg_us(),
    }
}

fn fmt_num(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}
