//! What the benchmark binaries share: reading a process's CPU time, finding
//! the repository, medians, and writing the figures (tables between markers
//! in docs/benchmarks.md, SVG plots).

use std::fs;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;

use plotters::prelude::*;

/// A y axis that spans orders of magnitude (latency, memory) is drawn on a
/// log scale, so that the small values stay readable beside the big ones.
#[derive(Clone, Copy, PartialEq)]
pub enum YScale {
    Linear,
    Log,
}

pub fn cpu_seconds(pid: u32) -> io::Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)
        .ok_or_else(|| io::Error::other("short /proc stat"))?
        .iter()
        .map(|f| f.parse::<f64>().unwrap_or(0.0))
        .sum();
    // SAFETY: sysconf has no preconditions.
    #[cfg(unix)]
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // Never reached elsewhere: /proc is Linux's (the read above fails).
    #[cfg(not(unix))]
    let per_second = 100.0;
    Ok(ticks / per_second)
}

pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn release_dir() -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| io::Error::other("no directory for the runner"))
}

pub fn repo_root() -> io::Result<PathBuf> {
    // target/release/runner -> the repository
    let release = release_dir()?;
    release
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .filter(|root| root.join("Cargo.toml").exists())
        .ok_or_else(|| io::Error::other("run the runner from target/release of the repository"))
}

pub fn median_min_max(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    (median, values[0], values[n - 1])
}

pub fn env_date() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

pub fn machine() -> String {
    let cpus = thread::available_parallelism().map_or(0, |n| n.get());
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_string())
        .unwrap_or_default();
    format!("{cpus} CPUs ({model}), Linux {kernel}")
}

/// Replaces what lies between `<!-- NAME:begin -->` and `<!-- NAME:end -->`
/// in the file at `path` with `content`.
pub fn write_between_markers(path: &Path, name: &str, content: &str) -> io::Result<()> {
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let text = fs::read_to_string(path).unwrap_or_else(|_| format!("{begin}\n{end}\n"));
    let (head, rest) = text
        .split_once(&begin)
        .ok_or_else(|| io::Error::other(format!("{} has no {begin} marker", path.display())))?;
    let (_, tail) = rest
        .split_once(&end)
        .ok_or_else(|| io::Error::other(format!("{} has no {end} marker", path.display())))?;
    fs::write(path, format!("{head}{begin}\n{content}{end}{tail}"))
}

pub fn plot_lines(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(&'static str, Vec<(f64, f64)>)],
    y_scale: YScale,
) -> io::Result<()> {
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
        root.fill(&WHITE)?;
        let xs = series.iter().flat_map(|(_, p)| p.iter().map(|(x, _)| *x));
        let ys = series.iter().flat_map(|(_, p)| p.iter().map(|(_, y)| *y));
        let x_max = xs.fold(1.0f64, f64::max);
        let (y_min, y_max) = ys.fold((f64::MAX, 1.0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
        let x_range = (1.0f64..x_max * 1.5).log_scale();
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(80);
        let colors: Vec<RGBAColor> = (0..series.len())
            .map(|i| Palette99::pick(i).to_rgba())
            .collect();
        macro_rules! draw_on {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(x_label)
                    .y_desc(y_label)
                    .draw()?;
                for ((name, points), color) in series.iter().zip(&colors) {
                    let color = *color;
                    chart
                        .draw_series(LineSeries::new(
                            points.iter().copied(),
                            color.stroke_width(2),
                        ))?
                        .label(*name)
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
                    chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
                }
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .position(SeriesLabelPosition::UpperLeft)
                    .draw()?;
            }};
        }
        match y_scale {
            YScale::Linear => draw_on!(builder.build_cartesian_2d(x_range, 0.0f64..y_max * 1.1)?),
            YScale::Log => {
                let low = (y_min.max(1.0) / 2.0).max(1.0);
                draw_on!(builder.build_cartesian_2d(x_range, (low..y_max * 2.0).log_scale())?)
            }
        }
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| io::Error::other(e.to_string()))
}
