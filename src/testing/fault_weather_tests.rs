//! The weather flow under faults, as the sensor core is in `fault_tests.rs`: random sequences
//! of forecasts landing, changing, emptied and removed on the server, and weather passes with
//! faults of the server (listing, open, read failing; the connection dropping mid-pass) and of
//! Bronze (write, flush, rename, the step after publishing) run through the real copy pipeline,
//! a real Bronze folder and a real redb store. After every pass:
//!
//! - Bronze holds, under each final or kept-aside name, exactly one version the server had
//!   under that name, and no file under a name the server never had;
//! - the log never claims a copy that is not on disk: every ingested forecast is at its Bronze
//!   path with the recorded hash, and the projections equal a rebuild from the log;
//! - after a fault-free pass, every non-empty forecast on the server is ingested with its
//!   current bytes, no temp file is left and the publishing journal is empty.

use crate::bronze::layout::is_temp_name;
use crate::bronze::LocalBronze;
use crate::identity::{ContentHash, FileKey, SourceId};
use crate::source::sftp::{Auth, HostKeyCheck, Secret, SecretSource, SftpSettings};
use crate::source::Counted;
use crate::store::Store;
use crate::testing::fault::{Fault, FaultPlan, FaultyBronze, FaultySource, Op, EIO, ENOSPC};
use crate::testing::{files_under as walk, ManualClock, MemorySource};
use crate::weather::{pass_on, WeatherContext};
use chrono::NaiveDate;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
enum Step {
    /// A forecast for day `day` lands or is replaced; body 0 is an empty file.
    Land {
        day: u8,
        body: u8,
    },
    Remove {
        pick: u8,
    },
    /// A name the grammar rejects lands.
    BadName,
    /// One weather pass with these faults armed (op, nth call, fault).
    Pass {
        faults: Vec<(Op, u8, Fault)>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::List),
        Just(Op::Open),
        Just(Op::Read),
        Just(Op::Write),
        Just(Op::Flush),
        Just(Op::Rename),
        Just(Op::Record),
    ]
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        Just(Fault::Errno(ENOSPC)),
        Just(Fault::Errno(EIO)),
        Just(Fault::ShortRead),
        Just(Fault::Disconnect),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..8, 0u8..4).prop_map(|(day, body)| Step::Land { day, body }),
        1 => any::<u8>().prop_map(|pick| Step::Remove { pick }),
        1 => Just(Step::BadName),
        3 => prop::collection::vec((op(), 0u8..4, fault()), 0..3)
            .prop_map(|faults| Step::Pass { faults }),
    ]
}

/// A weather server in memory, and what it ever held.
struct World {
    /// Holds Bronze and the store; removed when the case ends.
    _dir: tempfile::TempDir,
    plan: Arc<FaultPlan>,
    source: Counted<FaultySource<MemorySource>>,
    bronze: FaultyBronze<LocalBronze>,
    clock: ManualClock,
    sftp: SftpSettings,
    state: PathBuf,
    server: BTreeMap<String, Vec<u8>>,
    versions: BTreeMap<String, BTreeSet<Vec<u8>>>,
    tick: i64,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let plan = FaultPlan::new();
        let bronze = FaultyBronze {
            inner: LocalBronze::new(dir.path().join("bronze")),
            plan: Arc::clone(&plan),
        };
        let source = Counted::new(FaultySource {
            inner: MemorySource::default(),
            plan: Arc::clone(&plan),
        });
        let start = NaiveDate::from_ymd_opt(2023, 3, 1).unwrap();
        World {
            plan,
            source,
            bronze,
            clock: ManualClock::at_local(start.and_hms_opt(12, 0, 0).unwrap()),
            sftp: unused_server(),
            state: dir.path().join("s.redb"),
            _dir: dir,
            server: BTreeMap::new(),
            versions: BTreeMap::new(),
            tick: 0,
        }
    }

    fn put(&mut self, name: String, bytes: Vec<u8>) {
        self.tick += 1;
        let mtime = (1_677_000_000 + self.tick) * 1_000_000_000;
        self.source.inner().inner.put(&name, &bytes, mtime);
        let versions = self.versions.entry(name.clone()).or_default();
        versions.insert(bytes.clone());
        self.server.insert(name, bytes);
    }

    fn apply(&mut self, step: &Step, injected: &AtomicU64) {
        match step {
            Step::Land { day, body } => {
                let name = format!("Pred_2023-01-{:02}.csv", day + 1);
                let bytes = match body {
                    0 => Vec::new(),
                    n => format!("time,t\n{name},{n}\n")
                        .repeat(usize::from(*n) * 200)
                        .into_bytes(),
                };
                self.put(name, bytes);
            }
            Step::Remove { pick } => {
                if !self.server.is_empty() {
                    let i = usize::from(*pick) % self.server.len();
                    let name = self.server.keys().nth(i).unwrap().clone();
                    self.server.remove(&name);
                    self.source.inner().inner.remove(&name);
                }
            }
            Step::BadName => self.put("Pred_notes.txt".into(), b"x".to_vec()),
            Step::Pass { faults } => {
                for (op, nth, fault) in faults {
                    self.plan.add(*op, u64::from(*nth), *fault);
                }
                let before = self.plan.injected();
                // Under faults a pass may fail as a whole; it must never panic.
                let outcome = pass_on(&self.context(), &self.source);
                self.plan.clear();
                let fired = self.plan.injected() - before;
                injected.fetch_add(fired, Ordering::Relaxed);
                self.check_invariants();
                if fired == 0 {
                    outcome.expect("a fault-free weather pass succeeds");
                    self.check_complete();
                }
            }
        }
    }

    fn context(&self) -> WeatherContext<'_> {
        WeatherContext {
            sftp: &self.sftp,
            bronze: &self.bronze,
            state: &self.state,
            store_wait: Duration::ZERO,
            clock: &self.clock,
            min_age: chrono::Duration::zero(),
            batch_size: 2,
            stop: None,
        }
    }

    /// Bronze's files (relative path → bytes) and how many temp files are there.
    fn bronze_files(&self) -> (BTreeMap<PathBuf, Vec<u8>>, usize) {
        let root = self.bronze.inner.root();
        let (mut files, mut temps) = (BTreeMap::new(), 0);
        for path in walk(root) {
            if is_temp_name(&path.file_name().unwrap().to_string_lossy()) {
                temps += 1;
            } else {
                let rel = path.strip_prefix(root).unwrap().to_owned();
                files.insert(rel, std::fs::read(&path).unwrap());
            }
        }
        (files, temps)
    }

    fn check_invariants(&self) {
        let (files, _) = self.bronze_files();
        for (rel, bytes) in &files {
            let base = rel.file_name().unwrap().to_string_lossy();
            let name = base.split(".kept-").next().unwrap();
            let known = self.versions.get(name);
            assert!(
                known.is_some_and(|v| v.contains(bytes)),
                "{} is not a version the server had",
                rel.display()
            );
        }
        let store = Store::open(&self.state, Duration::ZERO).unwrap();
        let journal: BTreeSet<FileKey> = store
            .publishing()
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        store
            .for_each_file(|key, record| {
                if record.state.is_ingested() {
                    let rel = record.bronze.clone().unwrap();
                    let on_disk = recorded_copy(&files, &rel, record.hash, journal.contains(&key));
                    assert!(on_disk.is_some(), "log claims {rel}, not on disk ({key:?})");
                    let hash = ContentHash::from(blake3::hash(on_disk.unwrap()));
                    assert_eq!(Some(hash), record.hash, "{rel}: recorded hash != Bronze");
                }
            })
            .unwrap();
        assert!(store.projections_match_log().unwrap());
    }

    fn check_complete(&self) {
        let (_, temps) = self.bronze_files();
        assert_eq!(temps, 0, "temp files left after a clean pass");
        let store = Store::open(&self.state, Duration::ZERO).unwrap();
        let journal = store.publishing().unwrap();
        assert!(journal.is_empty(), "publishing journal left: {journal:?}");
        for (name, bytes) in &self.server {
            if bytes.is_empty() || !name.starts_with("Pred_2023") {
                continue;
            }
            let key = FileKey {
                source: SourceId::Weather,
                name: name.clone().into_bytes(),
            };
            let record = store.file(&key).unwrap();
            let current = ContentHash::from(blake3::hash(bytes));
            assert!(
                record
                    .as_ref()
                    .is_some_and(|r| r.state.is_ingested() && r.hash == Some(current)),
                "{name} is on the server but its bytes are not ingested: {record:?}"
            );
        }
    }
}

/// The bytes of a recorded copy: at its path, or, for a file in the publishing journal (a
/// batch published but not yet recorded, settled by the next pass), kept aside there because
/// a newer version took its path.
pub(crate) fn recorded_copy<'a>(
    files: &'a BTreeMap<PathBuf, Vec<u8>>,
    rel: &str,
    hash: Option<ContentHash>,
    journaled: bool,
) -> Option<&'a Vec<u8>> {
    let at_path = files.get(Path::new(rel));
    let kept = || {
        let kept = crate::bronze::layout::kept_rel(rel, hash?);
        files.get(Path::new(&kept))
    };
    match at_path {
        Some(bytes) if journaled && Some(ContentHash::from(blake3::hash(bytes))) != hash => {
            kept().or(Some(bytes))
        }
        other => other,
    }
}

/// Settings of a server that is never contacted: the model's passes read the memory source.
fn unused_server() -> SftpSettings {
    SftpSettings {
        host: "127.0.0.1".into(),
        port: 1,
        user: "nobody".into(),
        auth: Auth::Password(SecretSource::Value(Secret::new("unused"))),
        path: "/".into(),
        host_key: HostKeyCheck::Pinned("unused".into()),
        timeout: Duration::from_secs(1),
    }
}

/// Random weather histories with faults of the server and of Bronze, each ending with a
/// fault-free pass: the invariants above hold after every pass, and faults really fire.
#[test]
fn the_weather_flow_agrees_with_the_model_under_faults() {
    let cases = std::env::var("INGEST_MODEL_CASES").map_or(48, |v| v.parse().unwrap());
    let config = ProptestConfig {
        cases,
        source_file: Some(file!()),
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let injected = AtomicU64::new(0);
    let ending = [Step::Pass { faults: vec![] }];
    runner
        .run(&prop::collection::vec(step(), 1..30), |script| {
            let mut world = World::new();
            for step in script.iter().chain(&ending) {
                world.apply(step, &injected);
            }
            Ok(())
        })
        .unwrap();
    let injected = injected.into_inner();
    println!("weather model test: {cases} cases, {injected} faults injected, 0 differences");
    assert!(
        injected >= u64::from(cases) / 2,
        "too few faults fired: {injected}"
    );
}

/// A connection that drops while a pass reads a forecast ends the pass as an outage: the file
/// is not recorded as vanished or copied, nothing partial is left, and the next pass (the
/// server back) copies it.
#[test]
fn a_dropped_connection_mid_read_is_an_outage_and_the_next_pass_copies() {
    let mut world = World::new();
    let injected = AtomicU64::new(0);
    for day in 0..4 {
        world.apply(&Step::Land { day, body: 2 }, &injected);
    }
    let outcome = {
        world.plan.add(Op::Read, 0, Fault::Disconnect);
        let outcome = pass_on(&world.context(), &world.source);
        world.plan.clear();
        outcome
    };
    let err = outcome
        .expect_err("a dropped connection fails the pass")
        .to_string();
    assert!(err.contains("went away"), "{err}");
    world.check_invariants();
    let store = Store::open(&world.state, Duration::ZERO).unwrap();
    let mut vanished = 0;
    store
        .for_each_file(|_, r| {
            vanished += usize::from(format!("{:?}", r.state).contains("Vanished"));
        })
        .unwrap();
    assert_eq!(vanished, 0, "an outage is not files vanishing");
    drop(store);
    world.apply(&Step::Pass { faults: vec![] }, &injected);
}
