//! One reactor per core: how a `Group` spreads connections, and what a
//! second reactor buys.
//!
//! ```text
//! cargo build --release --examples
//! cargo build --release -p selectloop-bench --bins
//! target/release/scaling            # medians of 3
//! target/release/scaling --quick    # one run each, shorter
//! ```
//!
//! 1. Spread: a `Group` of 2 and of 4 loops in this process, under each
//!    `Balance`, takes 4 to 256 connections; each loop's `accepted` count
//!    says where they went (10 groups per point; the table gives the
//!    median and the worst difference between the busiest and the idlest
//!    loop).
//! 2. Throughput: `echo_server --threads 1` against `--threads 2`, with
//!    the load generator (2 threads) on the same two cores, unpinned: on a
//!    2-core machine the server and the load share the CPUs, so this shows
//!    what a second loop costs and buys when nothing is left idle, not how
//!    it scales on a many-core server.
//!
//! Results go to docs/benchmarks/scaling.csv and the table between the
//! `scaling` markers in docs/benchmarks.md.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::TcpStream;
use std::time::Duration;

use selectloop::{Balance, Config, ConnId, Context, Group};
use selectloop_bench::report::{
    env_date, machine, median_min_max, release_dir, repo_root, write_between_markers,
};
use selectloop_bench::servers::{
    raise_fd_limit, require_built, run_load_with, stop, Generator, Load, Server,
};

/// What `--help` prints: the commands of the doc above.
const USAGE: &str = "cargo build --release --examples\n\
cargo build --release -p selectloop-bench --bins\n\
target/release/scaling            # medians of 3\n\
target/release/scaling --quick    # one run each, shorter\n\
";

fn main() -> io::Result<()> {
    let quick = !selectloop_bench::switches(USAGE, &["--quick"]).is_empty();
    raise_fd_limit(65_536);
    let root = repo_root()?;
    let mut csv = String::from("measure,balance,loops,clients,repeat,value\n");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Measured {} on {}{}.\n",
        env_date(),
        machine(),
        if quick { ", `--quick`" } else { "" }
    );

    // 1. Spread.
    let groups = if quick { 3 } else { 10 };
    let _ = writeln!(
        out,
        "Connections per loop ({groups} groups per row; max − min is the busiest loop's \
         count less the idlest's):\n"
    );
    let _ = writeln!(
        out,
        "| balance | loops | clients | a typical spread | max − min, median | max − min, worst |"
    );
    let _ = writeln!(out, "|---|---:|---:|---|---:|---:|");
    for balance in [Balance::ReusePort, Balance::Acceptor] {
        for loops in [2, 4] {
            for clients in [4, 16, 64, 256] {
                let mut gaps = Vec::new();
                let mut typical = Vec::new();
                for repeat in 0..groups {
                    let per_loop = spread(balance, loops, clients)?;
                    let gap =
                        per_loop.iter().max().unwrap_or(&0) - per_loop.iter().min().unwrap_or(&0);
                    let _ = writeln!(csv, "spread,{balance:?},{loops},{clients},{repeat},{gap}");
                    if repeat == 0 {
                        typical = per_loop;
                    }
                    gaps.push(gap as f64);
                }
                let (median, _, worst) = median_min_max(&mut gaps);
                let line = format!(
                    "| {balance:?} | {loops} | {clients} | {typical:?} | {median:.0} | {worst:.0} |"
                );
                eprintln!("{line}");
                let _ = writeln!(out, "{line}");
            }
        }
    }

    // 2. One reactor against two, everything on two shared cores.
    let release = release_dir()?;
    let loadgen = release.join("loadgen");
    let echo = release.join("examples/echo_server");
    require_built([echo.as_path(), loadgen.as_path()])?;
    let repeats = if quick { 1 } else { 3 };
    let _ = writeln!(
        out,
        "\n`echo_server --threads N` (SO_REUSEPORT), the load generator with 2 threads, \
         all on the same 2 cores; {}:\n",
        if repeats > 1 {
            "median of 3"
        } else {
            "one run"
        }
    );
    let _ = writeln!(
        out,
        "| connections | pipeline | reactors | msgs/s | p99 µs | server CPU µs/msg |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|");
    for (connections, pipeline) in [(50, 16), (500, 1)] {
        for threads in [1usize, 2] {
            let threads_arg = threads.to_string();
            let server = Server::announcing(
                "echo_server",
                echo.clone(),
                &["--codec", "chunks", "--threads", &threads_arg],
            );
            let load = Load {
                connections,
                pipeline,
                size: 64,
                duration: if quick { 1.0 } else { 2.0 },
                warmup: if quick { 0.2 } else { 0.5 },
            };
            let generator = Generator {
                cpus: "0-1",
                threads: 2,
            };
            let mut figures = Vec::new();
            for repeat in 0..repeats {
                let (child, addr) = server.start_on_cpus("0-1")?;
                let run = run_load_with(&loadgen, &server, child.id(), addr, load, generator);
                stop(child);
                match run {
                    Ok(run) => {
                        let _ = writeln!(
                            csv,
                            "msgs_per_s,ReusePort,{threads},{connections}/p{pipeline},{repeat},{:.0}",
                            run.msgs_per_s
                        );
                        figures.push(run);
                    }
                    Err(e) => eprintln!("{threads} reactors, c={connections}: {e}"),
                }
            }
            let mut msgs: Vec<f64> = figures.iter().map(|r| r.msgs_per_s).collect();
            let mut p99: Vec<f64> = figures.iter().map(|r| r.p99_us).collect();
            let mut cpu: Vec<f64> = figures.iter().map(|r| r.cpu_per_msg_us()).collect();
            if msgs.is_empty() {
                continue;
            }
            let line = format!(
                "| {connections} | {pipeline} | {threads} | {:.0} | {:.0} | {:.2} |",
                median_min_max(&mut msgs).0,
                median_min_max(&mut p99).0,
                median_min_max(&mut cpu).0
            );
            eprintln!("{line}");
            let _ = writeln!(out, "{line}");
        }
    }
    let dir = root.join("docs/benchmarks");
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("scaling.csv"), &csv)?;
    write_between_markers(&root.join("docs/benchmarks.md"), "scaling", &out)?;
    print!("{out}");
    Ok(())
}

/// Connections per loop after `clients` connect to a fresh group.
fn spread(balance: Balance, loops: usize, clients: usize) -> io::Result<Vec<u64>> {
    let idle = |_index: usize| |_: &mut Context<'_>, _: ConnId, _: &[u8]| {};
    let group = Group::builder(Config::new())
        .threads(loops)
        .balance(balance)
        .spawn("127.0.0.1:0", idle)?;
    let connected: Vec<TcpStream> = (0..clients)
        .map(|_| TcpStream::connect(group.local_addr()))
        .collect::<io::Result<_>>()?;
    let mut per_loop = Vec::new();
    for _ in 0..500 {
        per_loop = group
            .stats(Duration::from_secs(5))?
            .iter()
            .map(|s| s.accepted)
            .collect();
        if per_loop.iter().sum::<u64>() == clients as u64 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(connected);
    group.stop();
    group.join()?;
    Ok(per_loop)
}
