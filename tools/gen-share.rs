//! `gen-share`: writes a realistic, deterministic sensor share (and optionally the weather
//! CSVs) for benchmarks and manual testing. See `tools/README.md`.
//!
//! gen-share DIR [--files N] [--offset-minutes K] [--gap START:LEN] [--bad-names] [--seed S]
//!               [--start YYYY-MM-DDTHH:MM] [--weather DIR --days D]

use clap::Parser;
use ingest::sample::{write_share, write_weather, ShareSpec};
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Generate a realistic sensor share (two apartments, one file per minute)")]
struct Args {
    /// Folder to fill (created if missing).
    dir: PathBuf,
    /// Total sensor files (split evenly over the two apartments).
    #[arg(long, default_value_t = 246_000)]
    files: u64,
    /// Start this many minutes after 18.08.2023 10:00 (to extend an existing share).
    #[arg(long, default_value_t = 0)]
    offset_minutes: i64,
    /// First minute of the series, `YYYY-MM-DDTHH:MM` (naive local) [default: 2023-08-18T10:00].
    #[arg(long, value_parser = parse_start)]
    start: Option<chrono::NaiveDateTime>,
    /// A JimmyLoup outage: START:LEN in minutes from the series start. Repeatable.
    #[arg(long, value_parser = parse_gap)]
    gap: Vec<(i64, i64)>,
    /// Also write names that must be skipped (temp files, bad dates, unknown apartment, a folder).
    #[arg(long)]
    bad_names: bool,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Also write weather CSVs into this folder.
    #[arg(long)]
    weather: Option<PathBuf>,
    /// Number of daily weather files.
    #[arg(long, default_value_t = 70)]
    days: u32,
}

fn parse_gap(s: &str) -> Result<(i64, i64), String> {
    let (a, b) = s.split_once(':').ok_or("expected START:LEN")?;
    Ok((
        a.parse().map_err(|_| "bad START")?,
        b.parse().map_err(|_| "bad LEN")?,
    ))
}

fn parse_start(s: &str) -> Result<chrono::NaiveDateTime, String> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").map_err(|e| e.to_string())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut spec = ShareSpec::seed_like(args.files);
    spec.offset_minutes = args.offset_minutes;
    if let Some(start) = args.start {
        spec.start = start;
    }
    spec.gaps = args.gap;
    spec.bad_names = args.bad_names;
    spec.seed = args.seed;
    let n = write_share(&args.dir, &spec)?;
    println!("wrote {n} sensor files to {}", args.dir.display());
    if let Some(w) = args.weather {
        let first = spec.start.date();
        let d = write_weather(&w, first, args.days, args.seed)?;
        println!("wrote {d} weather files to {}", w.display());
    }
    Ok(())
}
