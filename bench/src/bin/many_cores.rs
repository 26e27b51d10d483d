//! One reactor per core on a machine with many: selectloop's `Group`
//! against tokio's multi-thread runtime and a thread per connection, with
//! the same cores for each.
//!
//! ```text
//! cargo build --release --examples
//! cargo build --release -p selectloop-bench --bins
//! target/release/many_cores            # medians of 3
//! target/release/many_cores --quick    # one run each, shorter
//! ```
//!
//! The load generator gets the last 8 CPUs (half of them on a machine with
//! fewer than 16) and as many threads; the server gets the first N, for N
//! = 1, 2, 4 and 8 as far as the rest allows: `echo_server --threads N
//! --pin` (one loop per CPU), `tokio_echo --threads N --multi-thread`, and
//! `thread_echo` (a thread per connection, scheduled on the same N CPUs).
//! 64 and 512 connections, pipeline 1 and 16, 64-byte messages.
//!
//! Results go to docs/benchmarks/many-cores.csv, many-cores.svg and the
//! table between the `many-cores` markers of docs/benchmarks.md, with the
//! machine named: on a 2-core machine only N = 1 fits, and the table says
//! so rather than pretend to scale.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::thread;

use selectloop_bench::report::{
    env_date, machine, median_min_max, plot_lines, release_dir, repo_root, write_between_markers,
    YScale,
};
use selectloop_bench::servers::{
    raise_fd_limit, require_built, run_load_with, stop, Generator, Load, Server,
};

/// What `--help` prints: the commands of the doc above.
const USAGE: &str = "cargo build --release --examples\n\
cargo build --release -p selectloop-bench --bins\n\
target/release/many_cores            # medians of 3\n\
target/release/many_cores --quick    # one run each, shorter\n\
";

/// CPUs the load generator gets when the machine has 16 or more.
const LOAD_CPUS: usize = 8;

const SERVERS: [&str; 3] = [
    "selectloop Group",
    "tokio multi-thread",
    "thread per connection",
];

fn main() -> io::Result<()> {
    let quick = !selectloop_bench::switches(USAGE, &["--quick"]).is_empty();
    raise_fd_limit(65_536);
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        return Err(io::Error::other(
            "needs 2 CPUs at least: one for the server, one for the load",
        ));
    }
    let load_cpus = LOAD_CPUS.min(cpus / 2);
    let server_cpus = (cpus - load_cpus).min(8);
    let reactor_counts: Vec<usize> = [1, 2, 4, 8]
        .into_iter()
        .filter(|&n| n <= server_cpus)
        .collect();
    // The load's CPUs, as taskset names them; leaked once, for `Generator`.
    let load_list: &'static str = Box::leak(cpu_list(cpus - load_cpus, load_cpus).into_boxed_str());
    let generator = Generator {
        cpus: load_list,
        threads: load_cpus,
    };

    let release = release_dir()?;
    let loadgen = release.join("loadgen");
    let echo = release.join("examples/echo_server");
    let tokio = release.join("tokio_echo");
    let threads = release.join("thread_echo");
    require_built([
        echo.as_path(),
        tokio.as_path(),
        threads.as_path(),
        loadgen.as_path(),
    ])?;
    let repeats = if quick { 1 } else { 3 };

    let mut csv =
        String::from("server,cores,connections,pipeline,repeat,msgs_per_s,p99_us,cpu_us_per_msg\n");
    // (connections, pipeline, server, cores) -> median msgs/s.
    let mut medians: BTreeMap<(usize, usize, &str, usize), f64> = BTreeMap::new();
    for (connections, pipeline) in [(64, 1), (64, 16), (512, 1), (512, 16)] {
        let load = Load {
            connections,
            pipeline,
            size: 64,
            duration: if quick { 1.5 } else { 3.0 },
            warmup: 0.5,
        };
        for &cores in &reactor_counts {
            let n = cores.to_string();
            let server_list = cpu_list(0, cores);
            let servers = [
                Server::announcing(
                    SERVERS[0],
                    echo.clone(),
                    &["--codec", "chunks", "--threads", &n, "--pin"],
                ),
                Server::announcing(
                    SERVERS[1],
                    tokio.clone(),
                    &["--threads", &n, "--multi-thread"],
                ),
                Server::announcing(SERVERS[2], threads.clone(), &[]),
            ];
            for server in &servers {
                let mut msgs = Vec::new();
                for repeat in 0..repeats {
                    let (child, addr) = server.start_on_cpus(&server_list)?;
                    let run = run_load_with(&loadgen, server, child.id(), addr, load, generator);
                    stop(child);
                    match run {
                        Ok(run) => {
                            eprintln!(
                                "{:>22} cores {cores} c={connections:<4} p={pipeline:<2} #{repeat}: {:>10.0} msg/s  p99 {:>6} us  cpu {:.2} us/msg",
                                server.name, run.msgs_per_s, run.p99_us, run.cpu_per_msg_us()
                            );
                            let _ = writeln!(
                                csv,
                                "{},{cores},{connections},{pipeline},{repeat},{:.0},{},{:.3}",
                                server.name,
                                run.msgs_per_s,
                                run.p99_us,
                                run.cpu_per_msg_us()
                            );
                            msgs.push(run.msgs_per_s);
                        }
                        Err(e) => {
                            eprintln!("{} on {cores} cores, c={connections}: {e}", server.name)
                        }
                    }
                }
                if !msgs.is_empty() {
                    let median = median_min_max(&mut msgs).0;
                    medians.insert((connections, pipeline, server.name, cores), median);
                }
            }
        }
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "Measured {} on {}{}; servers on CPUs 0 to N−1, the load generator on CPU(s) {} \
         with {} thread(s); {}.\n",
        env_date(),
        machine(),
        if quick { ", `--quick`" } else { "" },
        load_list,
        load_cpus,
        if repeats > 1 {
            "median of 3"
        } else {
            "one run"
        }
    );
    if server_cpus < 8 {
        let _ = writeln!(
            out,
            "Only {server_cpus} CPU(s) left for the server on this machine: N stops at {}. \
             These rows show the setup, not how the servers scale.\n",
            reactor_counts.last().copied().unwrap_or(1)
        );
    }
    let _ = writeln!(
        out,
        "| connections | pipeline | cores N | selectloop msgs/s | tokio msgs/s | selectloop ÷ tokio | \
         thread per connection msgs/s | selectloop ÷ (N × its 1-core figure) |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut series: Vec<(&'static str, Vec<(f64, f64)>)> = Vec::new();
    for (connections, pipeline) in [(64, 1), (64, 16), (512, 1), (512, 16)] {
        let figure = |server: &str, cores: usize| {
            medians
                .get(&(connections, pipeline, server, cores))
                .copied()
        };
        let single = figure(SERVERS[0], 1);
        for &cores in &reactor_counts {
            let ours = figure(SERVERS[0], cores);
            let theirs = figure(SERVERS[1], cores);
            let cell = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.0}"));
            let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                _ => "–".to_string(),
            };
            let scaled = single.map(|s| s * cores as f64);
            let line = format!(
                "| {connections} | {pipeline} | {cores} | {} | {} | {} | {} | {} |",
                cell(ours),
                cell(theirs),
                ratio(ours, theirs),
                cell(figure(SERVERS[2], cores)),
                ratio(ours, scaled)
            );
            eprintln!("{line}");
            let _ = writeln!(out, "{line}");
        }
        for server in SERVERS {
            let points: Vec<(f64, f64)> = reactor_counts
                .iter()
                .filter_map(|&cores| figure(server, cores).map(|m| (cores as f64, m)))
                .collect();
            let label: &'static str =
                Box::leak(format!("{server}, c={connections} p={pipeline}").into_boxed_str());
            series.push((label, points));
        }
    }

    let root = repo_root()?;
    let dir = root.join("docs/benchmarks");
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("many-cores.csv"), &csv)?;
    plot_lines(
        &dir.join("many-cores.svg"),
        "Messages per second against server cores",
        "cores for the server (N)",
        "msgs/s",
        &series,
        YScale::Log,
    )?;
    write_between_markers(&root.join("docs/benchmarks.md"), "many-cores", &out)?;
    print!("{out}");
    Ok(())
}

/// `count` CPUs from `first`, as taskset lists them: `3`, or `8-15`.
fn cpu_list(first: usize, count: usize) -> String {
    match count {
        1 => first.to_string(),
        _ => format!("{first}-{}", first + count - 1),
    }
}
