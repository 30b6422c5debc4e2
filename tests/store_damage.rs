//! Issue 25, item 9: whichever pages of the store are hit, a damaged store ends every command
//! with exit 2 naming the store, or (when the damage hit only pages the command never reads)
//! with the same answer as the intact store; never a panic, never a hang. A seeded sweep of
//! random damage through the real binary; portable, so it also runs under Wine.

use crate::util::Rig;
use ingest::sample::Rng;
use serde_json::Value;
use std::fs;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// redb's page size, and the unit the damage overwrites.
const PAGE: usize = 4096;
/// Pages overwritten per damaged store (as the probe did).
const PAGES_HIT: usize = 4;
/// Damaged stores per run: every seed is a different set of pages, the same on every run.
const SEEDS: u64 = 40;
/// A command that runs longer than this on a store of this size has hung.
const HANG_SECS: u64 = 30;

/// Every command that opens the store, each run on a fresh copy of the damaged file.
const COMMANDS: [&[&str]; 9] = [
    &["status", "--json"],
    &["log", "--json"],
    &["gaps", "--json"],
    &["audit", "--json"],
    &["audit", "--repair", "--json"],
    &[
        "replay",
        "--since",
        "2023-08-18T10:00",
        "--until",
        "2023-08-18T12:00",
        "--json",
    ],
    &["adopt", "--json"],
    &["run", "--once", "--json"],
    &["run", "--scan", "--json"],
];

/// Commands whose success leaves the store as it was: their output is compared whole.
fn reads_only(args: &[&str]) -> bool {
    matches!(args, ["status" | "log" | "gaps", ..] | ["audit", "--json"])
}

/// `store` with `PAGES_HIT` distinct pages (any of them, the header too) overwritten with
/// random bytes chosen by `seed`; and which pages.
fn damage(store: &[u8], seed: u64) -> (Vec<u8>, Vec<usize>) {
    let mut rng = Rng::new(seed);
    let pages = store.len() / PAGE;
    let mut hit = Vec::new();
    while hit.len() < PAGES_HIT {
        let page = (rng.next() % pages as u64) as usize;
        if !hit.contains(&page) {
            hit.push(page);
        }
    }
    hit.sort_unstable();
    let mut bytes = store.to_vec();
    for &page in &hit {
        for chunk in bytes[page * PAGE..(page + 1) * PAGE].chunks_mut(8) {
            chunk.copy_from_slice(&rng.next().to_le_bytes()[..chunk.len()]);
        }
    }
    (bytes, hit)
}

/// Runs `cmd` for at most `HANG_SECS`; `None` (after killing it) if it was still running.
fn output_within(mut cmd: Command) -> Option<Output> {
    let mut child = crate::util::spawn_of(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()));
    // Drained on threads: a command that writes more than a pipe holds must not block.
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(HANG_SECS);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    status.map(|status| Output {
        status,
        stdout,
        stderr,
    })
}

fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = pipe.read_to_end(&mut out);
        out
    })
}

/// The JSON documents a command printed, without what depends on when it ran.
fn answer(stdout: &[u8]) -> Result<Vec<Value>, String> {
    let mut docs = Vec::new();
    for doc in serde_json::Deserializer::from_slice(stdout).into_iter::<Value>() {
        let mut doc = doc.map_err(|e| format!("not JSON ({e})"))?;
        forget_times(&mut doc);
        docs.push(doc);
    }
    Ok(docs)
}

/// Removes the fields that differ between two runs on the same store.
fn forget_times(doc: &mut Value) {
    match doc {
        Value::Object(map) => {
            for key in ["age_secs", "millis", "at", "last_reconcile"] {
                map.remove(key);
            }
            map.values_mut().for_each(forget_times);
        }
        Value::Array(items) => items.iter_mut().for_each(forget_times),
        _ => {}
    }
}

/// The log the store shipped into Bronze (`_ingest/`), put back with the store before each
/// command: the two are one state. (A command's own shipping would otherwise leave a log ahead
/// of the store put back after it, which later commands rightly refuse to ship over.)
struct ShippedLog(Vec<(std::path::PathBuf, Vec<u8>)>);

impl ShippedLog {
    fn of(rig: &Rig) -> ShippedLog {
        let files = crate::util::walk_all(&rig.bronze.join("_ingest"));
        ShippedLog(
            files
                .into_iter()
                .map(|f| (f.clone(), fs::read(f).unwrap()))
                .collect(),
        )
    }

    fn put_back(&self, rig: &Rig) {
        let _ = fs::remove_dir_all(rig.bronze.join("_ingest"));
        for (path, bytes) in &self.0 {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, bytes).unwrap();
        }
    }
}

/// What the intact store answers: each read-only command's output, and `status` after each
/// command (the store a command leaves behind).
struct Intact {
    answers: Vec<Option<Vec<Value>>>,
    status_after: Vec<Vec<Value>>,
}

impl Intact {
    fn record(rig: &Rig, pristine: &[u8], log: &ShippedLog) -> Intact {
        let mut intact = Intact {
            answers: Vec::new(),
            status_after: Vec::new(),
        };
        for args in COMMANDS {
            fs::write(&rig.state, pristine).unwrap();
            log.put_back(rig);
            let out = output_within(rig.cmd(args)).expect("the intact store answers");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{args:?} on the intact store: {err}"
            );
            let answer = answer(&out.stdout).unwrap();
            intact.answers.push(reads_only(args).then_some(answer));
            intact.status_after.push(status(rig).unwrap());
        }
        intact
    }
}

/// `status --json` of the rig's store: its answer, or why it is no answer.
fn status(rig: &Rig) -> Result<Vec<Value>, String> {
    let out = output_within(rig.cmd(&["status", "--json"])).ok_or("status hung")?;
    match out.status.code() {
        Some(0) => answer(&out.stdout),
        code => Err(format!("status exit {code:?}")),
    }
}

/// Why the outcome of command `i` on the damaged store is wrong, if it is.
fn judge(rig: &Rig, intact: &Intact, i: usize, out: Option<Output>) -> Option<String> {
    let Some(out) = out else {
        return Some(format!("still running after {HANG_SECS} s"));
    };
    let err = String::from_utf8_lossy(&out.stderr);
    let store = rig.state.to_str().unwrap();
    if err.contains("panicked") {
        return Some(format!("panicked: {err}"));
    }
    match out.status.code() {
        Some(2) if err.contains(store) => None,
        Some(2) => Some(format!("exit 2 not naming the store: {err}")),
        Some(0 | 1) => wrong_success(rig, intact, i, &out.stdout, &err),
        code => Some(format!("exit {code:?}: {err}")),
    }
}

/// A command that succeeded on a damaged store must have answered as on the intact one, and
/// left a store whose `status` is the intact one's (or that is reported damaged).
fn wrong_success(rig: &Rig, intact: &Intact, i: usize, stdout: &[u8], err: &str) -> Option<String> {
    if let Some(expected) = &intact.answers[i] {
        if answer(stdout).as_ref() != Ok(expected) {
            return Some(format!("succeeded with a wrong answer: {err}"));
        }
    }
    match status(rig) {
        Ok(after) if after != intact.status_after[i] => {
            Some("succeeded, and status then differs from the intact store's".into())
        }
        _ => None,
    }
}

/// 25.9: 40 stores, each with 4 random 4 KiB pages overwritten (seeded, any page, the header
/// too), and every command that opens the store run on each: each exits 2 naming the store,
/// or answers exactly as the intact store does (the damage hit pages it never reads); none
/// panics, none hangs. A failure lists every seed, its pages and command.
#[test]
fn random_page_damage_is_exit_2_naming_the_store_in_every_command() {
    let rig = Rig::new();
    rig.add_minutes(0, 600);
    rig.pass(&[], 0);
    let pristine = fs::read(&rig.state).unwrap();
    let log = ShippedLog::of(&rig);
    let intact = Intact::record(&rig, &pristine, &log);
    let mut failures = Vec::new();
    for seed in 0..SEEDS {
        let (bytes, pages) = damage(&pristine, seed);
        for (i, args) in COMMANDS.iter().enumerate() {
            fs::write(&rig.state, &bytes).unwrap();
            log.put_back(&rig);
            if let Some(why) = judge(&rig, &intact, i, output_within(rig.cmd(args))) {
                failures.push(format!("seed {seed}, pages {pages:?}, {args:?}: {why}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs went wrong:\n{}",
        failures.len(),
        SEEDS as usize * COMMANDS.len(),
        failures.join("\n")
    );
}
