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
//! connections open.
//!
//! Results go to docs/benchmarks/results.csv, docs/benchmarks/*.svg, and
//! the tables between the markers in docs/benchmarks.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use selectloop_bench::report::{
    cpu_seconds, env_date, free_port, machine, median_min_max, plot_lines, release_dir, repo_root,
    write_between_markers, YScale,
};

/// A server under test.
#[derive(Clone)]
struct Server {
    /// Column name in the tables.
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
    /// How it is started: announces its address, or needs a port given.
    port_arg: PortArg,
    /// Bytes of greeting to skip, and the reply prefix (select_server protocol).
    greeting: usize,
    prefix: &'static str,
    /// Which points it can serve.
    only_ping_pong_64: bool,
    max_connections: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum PortArg {
    /// `--addr 127.0.0.1:0`, prints `listening on ADDR` first.
    Announces,
    /// Takes a port number as its last argument and prints nothing useful.
    Positional,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Point {
    connections: usize,
    pipeline: usize,
    size: usize,
}

#[derive(Clone, Debug, Default)]
struct Run {
    msgs_per_s: f64,
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    errors: u64,
    total_msgs: u64,
    cpu_s: f64,
}

struct Settings {
    duration: f64,
    warmup: f64,
    repeats: usize,
    connections: Vec<usize>,
    idle_counts: Vec<usize>,
}

fn main() -> io::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
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
        "server,connections,pipeline,size,repeat,msgs_per_s,p50_us,p99_us,p999_us,errors,total_msgs,server_cpu_s,cpu_us_per_msg\n",
    );
    let mut results: BTreeMap<(Point, &'static str), Vec<Run>> = BTreeMap::new();
    let reuse = std::env::args().any(|a| a == "--reuse-throughput");
    if reuse {
        // Only memory and system calls are measured again; the throughput
        // figures come from the last run's CSV.
        csv = fs::read_to_string(out_dir.join("results.csv"))?;
        load_csv(&csv, &servers, &mut results);
    }
    for &point in points.iter().filter(|_| !reuse) {
        for repeat in 0..settings.repeats {
            for server in &servers {
                if !server.serves(point) {
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
                    cpu_per_msg_us(&run)
                );
                let _ = writeln!(
                    csv,
                    "{},{},{},{},{},{:.0},{},{},{},{},{},{:.3},{:.3}",
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
                    cpu_per_msg_us(&run)
                );
                results.entry((point, server.name)).or_default().push(run);
            }
        }
    }
    fs::write(out_dir.join("results.csv"), &csv)?;

    // System calls per message, at 50 connections.
    let mut syscalls: BTreeMap<(usize, &'static str), f64> = BTreeMap::new();
    for pipeline in [1, 16] {
        let point = Point {
            connections: 50,
            pipeline,
            size: 64,
        };
        for server in &servers {
            if !server.serves(point) {
                continue;
            }
            // The share of epoll_wait per message depends on timing, so the
            // count is repeated like the other figures; the median is kept.
            let mut counts = Vec::new();
            for _ in 0..settings.repeats {
                match count_syscalls(server, &loadgen, point, &settings) {
                    Ok(per_msg) => {
                        eprintln!(
                            "{:>22} p={pipeline:<2}: {per_msg:.3} syscalls/msg",
                            server.name
                        );
                        counts.push(per_msg);
                    }
                    Err(e) => eprintln!("{} syscalls: {e}", server.name),
                }
            }
            if !counts.is_empty() {
                let (median, _, _) = median_min_max(&mut counts);
                syscalls.insert((pipeline, server.name), median);
            }
        }
    }

    // Memory per idle connection.
    let mut memory: BTreeMap<(usize, &'static str), f64> = BTreeMap::new();
    for &count in &settings.idle_counts {
        for server in &servers {
            if count > server.max_connections {
                continue;
            }
            match idle_memory(server, count) {
                Ok(bytes) => {
                    eprintln!("{:>22} {count:>6} idle: {bytes:.0} B/conn", server.name);
                    memory.insert((count, server.name), bytes);
                }
                Err(e) => eprintln!("{} with {count} idle connections: {e}", server.name),
            }
        }
    }

    let mut extra = String::from("measure,server,param,value\n");
    for ((pipeline, name), value) in &syscalls {
        let _ = writeln!(
            extra,
            "syscalls_per_msg,{name},pipeline={pipeline},{value:.4}"
        );
    }
    for ((count, name), value) in &memory {
        let _ = writeln!(
            extra,
            "rss_bytes_per_idle_conn,{name},idle={count},{value:.0}"
        );
    }
    fs::write(out_dir.join("syscalls-memory.csv"), extra)?;

    let names: Vec<&'static str> = servers.iter().map(|s| s.name).collect();
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

impl Server {
    fn serves(&self, point: Point) -> bool {
        point.connections <= self.max_connections
            && (!self.only_ping_pong_64 || (point.pipeline == 1 && point.size == 64))
    }

    /// Starts the server pinned to CPU 0; returns it and its address.
    fn start(&self) -> io::Result<(Child, SocketAddr)> {
        let mut command = Command::new("taskset");
        command
            .args(["-c", "0"])
            .arg(&self.program)
            .args(&self.args);
        let fixed_port = match self.port_arg {
            PortArg::Announces => {
                command.args(["--addr", "127.0.0.1:0"]);
                command.stdout(Stdio::piped());
                None
            }
            PortArg::Positional => {
                let port = free_port()?;
                command.arg(port.to_string());
                command.stdout(Stdio::null());
                Some(port)
            }
        };
        let mut child = command.stderr(Stdio::null()).spawn()?;
        let addr = match fixed_port {
            None => {
                let stdout = child
                    .stdout
                    .take()
                    .ok_or_else(|| io::Error::other("no stdout"))?;
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line)?;
                line.trim()
                    .strip_prefix("listening on ")
                    .and_then(|a| a.parse().ok())
                    .ok_or_else(|| io::Error::other(format!("unexpected first line {line:?}")))?
            }
            Some(port) => {
                let addr: SocketAddr = ([127, 0, 0, 1], port).into();
                let deadline = Instant::now() + Duration::from_secs(10);
                while TcpStream::connect(addr).is_err() {
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        return Err(io::Error::other("server did not start listening"));
                    }
                    thread::sleep(Duration::from_millis(20));
                }
                // That probe connection is a client the server now knows about;
                // give it a moment to see it go.
                thread::sleep(Duration::from_millis(100));
                addr
            }
        };
        Ok((child, addr))
    }
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn servers(root: &Path) -> io::Result<Vec<Server>> {
    let release = release_dir()?;
    let examples = release.join("examples");
    let announce = |name, program: PathBuf, args: &[&str]| Server {
        name,
        program,
        args: args.iter().map(|s| s.to_string()).collect(),
        port_arg: PortArg::Announces,
        greeting: 0,
        prefix: "",
        only_ping_pong_64: false,
        max_connections: usize::MAX,
    };
    let mut servers = vec![
        announce("raw mio", release.join("mio_echo"), &[]),
        announce(
            "selectloop echo_server",
            examples.join("echo_server"),
            &["--codec", "chunks"],
        ),
        announce(
            "tokio current_thread",
            release.join("tokio_echo"),
            &["--threads", "1"],
        ),
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
    for server in &servers {
        if !server.program.exists() {
            return Err(io::Error::other(format!(
                "{} is not built: run `cargo build --release --examples` and \
                 `cargo build --release -p selectloop-bench --bins`",
                server.program.display()
            )));
        }
    }
    // The Python original, if it is next to the project and python3 exists.
    let python = root.join("../shared/reference/select_server.py");
    let has_python = Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if python.exists() && has_python {
        servers.push(Server {
            name: "Python select() original",
            program: PathBuf::from("python3"),
            args: vec![python.display().to_string()],
            port_arg: PortArg::Positional,
            greeting: 17,
            prefix: "response: ",
            only_ping_pong_64: true,
            // select() watches at most 1024 descriptors.
            max_connections: 1000,
        });
    }
    Ok(servers)
}

fn measure(server: &Server, loadgen: &Path, point: Point, settings: &Settings) -> io::Result<Run> {
    let (child, addr) = server.start()?;
    let pid = child.id();
    let cpu_before = cpu_seconds(pid)?;
    let output = loadgen_command(loadgen, server, addr, point, settings).output();
    let cpu_after = cpu_seconds(pid).unwrap_or(cpu_before);
    stop(child);
    let output = output?;
    let mut run = parse_loadgen(&String::from_utf8_lossy(&output.stdout))?;
    if !output.status.success() && run.errors == 0 {
        return Err(io::Error::other(format!(
            "load generator failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    run.cpu_s = cpu_after - cpu_before;
    Ok(run)
}

fn loadgen_command(
    loadgen: &Path,
    server: &Server,
    addr: SocketAddr,
    point: Point,
    settings: &Settings,
) -> Command {
    let mut command = Command::new("taskset");
    command
        .args(["-c", "1"])
        .arg(loadgen)
        .args(["--addr", &addr.to_string()])
        .args(["--connections", &point.connections.to_string()])
        .args(["--pipeline", &point.pipeline.to_string()])
        .args(["--size", &point.size.to_string()])
        .args(["--duration", &settings.duration.to_string()])
        .args(["--warmup", &settings.warmup.to_string()]);
    if server.greeting > 0 {
        command.args(["--greeting", &server.greeting.to_string()]);
    }
    if !server.prefix.is_empty() {
        command.args(["--prefix", server.prefix]);
    }
    command
}

fn parse_loadgen(stdout: &str) -> io::Result<Run> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("msgs_per_s="))
        .ok_or_else(|| io::Error::other("no result line from the load generator"))?;
    let mut run = Run::default();
    for field in line.split_whitespace() {
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        let value: f64 = value.parse().unwrap_or(0.0);
        match key {
            "msgs_per_s" => run.msgs_per_s = value,
            "p50_us" => run.p50_us = value,
            "p99_us" => run.p99_us = value,
            "p999_us" => run.p999_us = value,
            "errors" => run.errors = value as u64,
            "total_msgs" => run.total_msgs = value as u64,
            _ => {}
        }
    }
    Ok(run)
}

/// System calls the server makes per message, counted by perf's
/// `raw_syscalls:sys_enter` tracepoint over the whole load run.
fn count_syscalls(
    server: &Server,
    loadgen: &Path,
    point: Point,
    settings: &Settings,
) -> io::Result<f64> {
    let (child, addr) = server.start()?;
    let pid = child.id();
    let perf_out = std::env::temp_dir().join(format!("selectloop-perf-{pid}.txt"));
    let mut perf = Command::new("perf")
        .args([
            "stat",
            "-x,",
            "-e",
            "raw_syscalls:sys_enter",
            "-p",
            &pid.to_string(),
            "-o",
        ])
        .arg(&perf_out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    thread::sleep(Duration::from_millis(300)); // perf attaches
    let output = loadgen_command(loadgen, server, addr, point, settings).output();
    // SAFETY: kill has no memory preconditions; perf prints its counts on SIGINT.
    unsafe { libc::kill(perf.id() as libc::pid_t, libc::SIGINT) };
    let _ = perf.wait();
    stop(child);
    let run = parse_loadgen(&String::from_utf8_lossy(&output?.stdout))?;
    let text = fs::read_to_string(&perf_out)?;
    let _ = fs::remove_file(&perf_out);
    let count: f64 = text
        .lines()
        .find(|l| l.contains("raw_syscalls:sys_enter"))
        .and_then(|l| l.split(',').next())
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("no count in perf output: {text:?}")))?;
    Ok(count / run.total_msgs.max(1) as f64)
}

/// Resident bytes per idle connection: VmRSS with `count` connections open,
/// less VmRSS with none, divided by `count`.
fn idle_memory(server: &Server, count: usize) -> io::Result<f64> {
    let (child, addr) = server.start()?;
    let pid = child.id();
    thread::sleep(Duration::from_millis(200));
    let before = rss_bytes(pid)?;
    let mut clients = Vec::with_capacity(count);
    for i in 0..count {
        match TcpStream::connect(addr) {
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
    let after = rss_bytes(pid)?;
    stop(child);
    for client in &clients {
        // Reset rather than close: no TIME_WAIT left behind by the thousands.
        let _ = socket2::SockRef::from(client).set_linger(Some(Duration::ZERO));
    }
    drop(clients);
    Ok(after.saturating_sub(before) as f64 / count as f64)
}

fn cpu_per_msg_us(run: &Run) -> f64 {
    run.cpu_s * 1e6 / run.total_msgs.max(1) as f64
}

fn rss_bytes(pid: u32) -> io::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|kib| kib.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| io::Error::other("no VmRSS"))
}

fn open_fds(pid: u32) -> io::Result<usize> {
    Ok(fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

fn raise_fd_limit(wanted: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write only the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = (wanted as libc::rlim_t).min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
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
    syscalls: &BTreeMap<(usize, &'static str), f64>,
    memory: &BTreeMap<(usize, &'static str), f64>,
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
    let _ = writeln!(md, "| server | pipeline 1 | pipeline 16 |\n|---|---:|---:|");
    for name in names {
        let one = syscalls
            .get(&(1, *name))
            .map_or("–".into(), |v| format!("{v:.3}"));
        let sixteen = syscalls
            .get(&(16, *name))
            .map_or("–".into(), |v| format!("{v:.3}"));
        let _ = writeln!(md, "| {name} | {one} | {sixteen} |");
    }
    let _ = writeln!(md);

    let counts: Vec<usize> = {
        let mut c: Vec<usize> = memory.keys().map(|(count, _)| *count).collect();
        c.dedup();
        c.sort_unstable();
        c.dedup();
        c
    };
    let _ = writeln!(md, "### Resident memory per idle connection (bytes)\n");
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
            let cell = memory
                .get(&(*count, *name))
                .map_or("–".into(), |v| format!("{v:.0}"));
            let _ = write!(md, " {cell} |");
        }
        let _ = writeln!(md);
    }
    md
}

fn pick(run: &Run, field: usize) -> f64 {
    match field {
        0 => run.msgs_per_s,
        1 => run.p99_us,
        _ => cpu_per_msg_us(run),
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
