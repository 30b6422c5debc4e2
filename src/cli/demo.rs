//! `ingest demo [DIR]`: a guided tour on generated data. Builds a sample share (two apartments,
//! two days of minute files, a sensor outage, some bad names), ingests it with the real
//! pipeline (first pass = reconcile), lets new files arrive and finds them by prediction, then
//! prints the status, the gaps report that finds the outage, and where to look.

use super::{gaps, status, GlobalArgs};
use crate::bronze::layout::sensor_rel;
use crate::bronze::LocalBronze;
use crate::clock::{Clock, SystemClock};
use crate::config::{Settings, StreamMap, DEFAULT_STREAMS};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::naming::{truncate_to_minute, SensorName};
use crate::pass::run_pass;
use crate::record::PassReport;
use crate::sample::{write_share, ShareSpec};
use crate::source::{Counted, DirSource};
use crate::store::Store;
use clap::Args;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Marks a folder as the demo's own, so a re-run may clear it and nothing else is ever removed.
const MARKER: &str = ".ingest-demo";
const DAY: i64 = 24 * 60;

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Folder for the sample share, Bronze and store.
    #[arg(default_value = "demo")]
    pub dir: PathBuf,
}

pub fn run(_global: &GlobalArgs, args: &DemoArgs) -> Result<ExitCode> {
    let dir = &args.dir;
    prepare(dir)?;
    let (share, bronze_root, state) = (
        dir.join("share"),
        dir.join("bronze"),
        dir.join("ingest.redb"),
    );
    // Two days ending half an hour ago, so the files that "land" in step 3 bring the streams up
    // to the wall clock and step 4 shows a truly caught-up check.
    let now = truncate_to_minute(SystemClock.now_local());
    let mut spec = ShareSpec::seed_like(0);
    spec.start = now - chrono::Duration::minutes(2 * DAY);
    spec.minutes = 2 * DAY - 30;
    spec.gaps = vec![(DAY + 6 * 60, 45)];
    spec.bad_names = true;
    let n = write_share(&share, &spec).map_err(|e| Error::io("writing the sample share", e))?;
    println!(
        "1. Generated {n} sensor files (+ {} bad entries) in {}",
        crate::sample::BAD_NAMES.len() + 1,
        share.display()
    );
    println!("   JimmyLoup has a 45-minute outage on day 2; the bad names must be skipped.\n");

    let streams = StreamMap::parse(&[DEFAULT_STREAMS.into()])?;
    let settings = Settings::new(streams);
    let source = Counted::new(DirSource::new(&share));
    let bronze = LocalBronze::new(&bronze_root);
    let _writing = crate::store::WriteLock::acquire(&state)?;
    let store = Store::open(&state, std::time::Duration::from_secs(5))?;
    let ctx = Context::new(&store, &source, &bronze, &SystemClock, &settings);
    let first = run_pass(&ctx, None)?;
    show("2. First pass (empty index, so a full reconcile)", &first);

    let spec_start = spec.start;
    spec.offset_minutes = spec.minutes;
    spec.minutes = 30;
    spec.gaps.clear();
    spec.bad_names = false;
    let more = write_share(&share, &spec).map_err(|e| Error::io("adding files", e))?;
    let second = run_pass(&ctx, None)?;
    show(
        &format!("3. {more} new files land; prediction finds them without listing the share"),
        &second,
    );
    let idle = run_pass(&ctx, None)?;
    show("4. Nothing new: an idle prediction check", &idle);
    drop(store);

    println!("5. Status:");
    let resolved = super::Resolved {
        smb_path: Some(share.clone()),
        smb: None,
        bronze_root: bronze_root.clone(),
        object: None,
        s3_credentials: None,
        s3_timeout: std::time::Duration::from_secs(120),
        smb_timeout: std::time::Duration::from_secs(30),
        sftp_timeout: std::time::Duration::from_secs(30),
        state: state.clone(),
        streams: settings.streams.clone(),
        store_wait: std::time::Duration::from_secs(5),
        weather: None,
        config: None,
        listed_feeds: Vec::new(),
        run_file: Default::default(),
        origins: Default::default(),
        file_keys: Default::default(),
    };
    status::run(&resolved, &status::StatusArgs { json: false })?;
    println!("\n6. What never arrived (`ingest gaps`): JimmyLoup's 45-minute outage");
    // Exit 1 (minutes are missing) is the point of this step, not a failure of the demo.
    gaps::run(&resolved, &gaps::GapsArgs::default())?;
    let oldest = SensorName::new(spec_start, "JimmyLoup");
    let rel = sensor_rel("jimmy", &oldest);
    let hour_dir = rel.rsplit_once('/').map_or(rel.as_str(), |(d, _)| d);
    println!(
        "\nLook at:\n  {}   (Bronze, by stream/year/month/day/hour)",
        bronze.path_of(hour_dir).display()
    );
    let g = format!(
        "--state {} --smb-path {} --bronze-root {}",
        quoted(&state),
        quoted(&share),
        quoted(&bronze_root)
    );
    let (exe, find) = (program(), FIND);
    println!("  {exe} log {g} --file \"{oldest}\"");
    println!("  {exe} log {g} | {find} skipped");
    println!("  {exe} gaps {g}");
    println!("  {exe} run --once {g}");
    Ok(ExitCode::SUCCESS)
}

/// The filter the suggested commands pipe into: `findstr` works in both cmd and PowerShell.
const FIND: &str = if cfg!(windows) { "findstr" } else { "grep" };

/// How to start ingest in the suggested commands: cargo in a source tree on Unix; on Windows
/// the running `ingest.exe` itself (`.\ingest.exe` when it is in the current folder).
fn program() -> String {
    if !cfg!(windows) {
        return "cargo run --release --".into();
    }
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("ingest.exe"));
    let here = std::env::current_dir().ok();
    match (exe.parent(), exe.file_name()) {
        (Some(dir), Some(name)) if here.as_deref() == Some(dir) => {
            format!(".\\{}", name.to_string_lossy())
        }
        _ => quoted(&exe),
    }
}

/// A path for a command line: in double quotes when it holds a space (the quoting that bash,
/// cmd and PowerShell share).
fn quoted(path: &Path) -> String {
    let shown = path.display().to_string();
    if shown.contains(' ') {
        format!("\"{shown}\"")
    } else {
        shown
    }
}

fn show(title: &str, r: &PassReport) {
    let t = &r.tally;
    println!("{title}:");
    println!(
        "   {}: copied {}, skipped {}, failed {}, deferred {}; {} lookups, {} listings; {} ms\n",
        r.mode,
        t.copied,
        t.skipped,
        t.failed,
        t.deferred,
        r.work.lookups,
        r.work.listings,
        r.millis
    );
}

/// Clears a previous demo in `dir`; refuses to touch a non-empty folder that is not one.
fn prepare(dir: &Path) -> Result<()> {
    if dir.exists()
        && fs::read_dir(dir)
            .map_err(|e| Error::io("reading demo folder", e))?
            .next()
            .is_some()
    {
        if !dir.join(MARKER).exists() {
            return Err(Error::Config(format!(
                "{} exists and is not a demo folder; choose another: `ingest demo DIR`",
                dir.display()
            )));
        }
        for sub in ["share", "bronze"] {
            let p = dir.join(sub);
            if p.exists() {
                fs::remove_dir_all(&p)
                    .map_err(|e| Error::io(format!("clearing {}", p.display()), e))?;
            }
        }
        let _ = fs::remove_file(dir.join("ingest.redb"));
    }
    fs::create_dir_all(dir).map_err(|e| Error::io("creating demo folder", e))?;
    fs::write(
        dir.join(MARKER),
        "created by `ingest demo`; safe to delete\n",
    )
    .map_err(|e| Error::io("marking demo folder", e))
}
