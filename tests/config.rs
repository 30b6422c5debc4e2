//! One config file holds everything: `[[feed]]` tables, the `[run]` table, `ingest config
//! check` and `ingest config show`, tried through the binary as a new user would — the
//! example file from the repo, a typo, a share that is not there, a feed of another shape than
//! the seed's, run by listing.

use crate::util::{ingest, text, Rig};
use std::fs;
use std::process::Output;

/// `ingest --config ingest.toml ARGS` in the rig's folder.
fn with_config(rig: &Rig, args: &[&str]) -> Output {
    let mut all = vec!["--config", "ingest.toml"];
    all.extend_from_slice(args);
    ingest(rig.dir.path(), &all, &[])
}

/// `ingest.toml` in the rig's folder: Bronze and the store under `storage/`, and one
/// `[[feed]]` table whose keys are `feed`.
fn write_feed_config(rig: &Rig, feed: &str) {
    let text = format!(
        "bronze_root = \"storage/bronze\"\nstate = \"storage/ingest.redb\"\n\n[[feed]]\n{feed}"
    );
    fs::write(rig.dir.path().join("ingest.toml"), text).unwrap();
}

/// The 5-minute meter of the issue, from the folder `meters`, its one stream `A1` into
/// `meter-a1`, CSV-checked: a `[[feed]]` table's keys for [`write_feed_config`].
const METER: &str = "name = \"meter\"\nsource = \"meters\"\n\
     pattern = \"meter_{stream}_{YYYY}{MM}{DD}T{HH}{mi}.csv\"\ncadence = \"5m\"\n\
     streams = { A1 = \"meter-a1\" }\ncheck = \"csv\"\n";

/// `ingest --config ingest.toml config check` in the rig's folder.
fn config_check(rig: &Rig) -> Output {
    with_config(rig, &["config", "check"])
}

/// The sensors feed of `examples/ingest.toml`, over `share`, as a file in the rig's folder.
fn example_config(rig: &Rig) -> std::path::PathBuf {
    let example =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/ingest.toml")).unwrap();
    assert!(
        example.contains("source = \"sample-share\""),
        "the example's share"
    );
    let config = rig.dir.path().join("ingest.toml");
    fs::write(&config, example.replace("sample-share", "share")).unwrap();
    config
}

/// The repo's annotated example is accepted as it stands (its share and a Bronze folder that
/// does not exist yet), one `ok` line per check, exit 0; and `run --once` with it copies the
/// seed's files where the seed's environment variables would have put them.
#[test]
fn the_example_config_file_passes_config_check_and_runs_the_seed_feed() {
    let rig = Rig::new();
    rig.add_minutes(0, 2);
    example_config(&rig);
    let out = config_check(&rig);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.lines().all(|l| l.starts_with("ok ")), "{stdout}");
    for says in [
        "valid, 1 feed(s)",
        "feed `sensors`: every 1m, names like `18.08.2023 1000_JeremieVianin_received.json`",
        "feed `sensors`: source share reached",
        "Bronze storage/bronze: not there yet",
    ] {
        assert!(stdout.contains(says), "says {says}: {stdout}");
    }
    assert!(
        !rig.dir.path().join("storage").exists(),
        "a check creates nothing"
    );
    let out = with_config(&rig, &["run", "--once"]);
    assert!(out.status.success(), "{:?}", text(&out));
    let copied = rig
        .dir
        .path()
        .join("storage/bronze/jimmy/2023/08/18/10/18.08.2023 1001_JimmyLoup_received.json");
    assert!(copied.is_file(), "the seed's layout");
}

/// A share that is not there is a FAIL line naming the feed (exit 1); a pattern typo is
/// exit 2 naming the feed and the field, before anything is reached.
#[test]
fn config_check_names_the_feed_and_what_to_fix() {
    let rig = Rig::new();
    let config = example_config(&rig);
    let example = fs::read_to_string(&config).unwrap();
    fs::write(
        &config,
        example.replace("source = \"share\"", "source = \"no-such-share\""),
    )
    .unwrap();
    let out = config_check(&rig);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let fail: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(fail.len(), 1, "{stdout}");
    assert!(
        fail[0].contains("feed `sensors`: source no-such-share"),
        "{stdout}"
    );

    fs::write(
        &config,
        example.replace("{HH}{mi}_{stream}", "{HH}{mm}_{stream}"),
    )
    .unwrap();
    let out = config_check(&rig);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("feed `sensors`, `pattern`"), "{stderr}");
    assert!(stderr.contains("{mm}"), "names the typo: {stderr}");
}

/// `audit` checks a declared feed's files against the feed's own source, and `--repair`
/// re-copies from it what is missing or corrupt in Bronze, as for the share's; a file whose
/// source changed since it was ingested is reported and never spread into Bronze. The feed is
/// alone in the config file: no share is needed.
#[test]
fn audit_repairs_a_feeds_bronze_files_from_the_feeds_source() {
    let rig = Rig::new();
    write_feed_config(&rig, METER);
    let meters = rig.dir.path().join("meters");
    fs::create_dir(&meters).unwrap();
    let slots = ["1000", "1005", "1010"];
    for hhmm in slots {
        let name = format!("meter_A1_20230818T{hhmm}.csv");
        fs::write(meters.join(name), format!("t,kwh\n{hhmm},1\n")).unwrap();
    }
    let out = with_config(&rig, &["run", "--once", "--min-age-secs", "0"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let bronze = rig.dir.path().join("storage/bronze/meter-a1/2023/08/18/10");
    let at = |hhmm: &str| bronze.join(format!("meter_A1_20230818T{hhmm}.csv"));
    fs::remove_file(at("1000")).unwrap();
    fs::write(at("1005"), "t,kwh\n10:05,999\n").unwrap();
    fs::write(
        meters.join("meter_A1_20230818T1010.csv"),
        "t,kwh\nrewritten\n",
    )
    .unwrap();

    let audit = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["audit", "--json"];
        args.extend_from_slice(extra);
        let out = with_config(&rig, &args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
        serde_json::from_str(stdout.trim()).unwrap()
    };
    let findings = |report: &serde_json::Value| -> Vec<(String, String, bool)> {
        let mut v: Vec<_> = (report["problems"].as_array().unwrap().iter())
            .map(|p| {
                let file = p["file"].as_str().unwrap().to_owned();
                let finding = p["finding"].as_str().unwrap().to_owned();
                (file, finding, p["repaired"].as_bool().unwrap())
            })
            .collect();
        v.sort();
        v
    };
    let found = findings(&audit(&[]));
    let expected = |repaired: bool| {
        vec![
            (
                "meter_A1_20230818T1000.csv".to_string(),
                "missing-in-bronze".to_string(),
                repaired,
            ),
            (
                "meter_A1_20230818T1005.csv".to_string(),
                "bronze-corrupt".to_string(),
                repaired,
            ),
            (
                "meter_A1_20230818T1010.csv".to_string(),
                "source-changed".to_string(),
                false,
            ),
        ]
    };
    assert_eq!(
        found,
        expected(false),
        "each read against the feed's source"
    );

    assert_eq!(findings(&audit(&["--repair"])), expected(true));
    assert_eq!(fs::read_to_string(at("1000")).unwrap(), "t,kwh\n1000,1\n");
    assert_eq!(fs::read_to_string(at("1005")).unwrap(), "t,kwh\n1005,1\n");
    assert_eq!(
        fs::read_to_string(at("1010")).unwrap(),
        "t,kwh\n1010,1\n",
        "a changed source is not spread into Bronze"
    );
}

/// `adopt` records a declared feed's files already in Bronze (an earlier pipeline's): the feed
/// is declared as its first pass would, the files exactly where its layout puts their names
/// are adopted (hashed), one in another folder is named a stray and left out, and the feed's
/// next pass copies none of the adopted ones again.
#[test]
fn adopt_records_a_feeds_files_where_its_layout_puts_them() {
    let rig = Rig::new();
    write_feed_config(&rig, METER);
    let meters = rig.dir.path().join("meters");
    let hour = rig.dir.path().join("storage/bronze/meter-a1/2023/08/18");
    fs::create_dir_all(&meters).unwrap();
    fs::create_dir_all(hour.join("10")).unwrap();
    fs::create_dir_all(hour.join("11")).unwrap();
    let name = |hhmm: &str| format!("meter_A1_20230818T{hhmm}.csv");
    for hhmm in ["1000", "1005"] {
        let body = format!("t,kwh\n{hhmm},1\n");
        fs::write(meters.join(name(hhmm)), &body).unwrap();
        fs::write(hour.join("10").join(name(hhmm)), &body).unwrap();
    }
    fs::write(hour.join("11").join(name("1010")), "t,kwh\n1010,1\n").unwrap();

    let out = with_config(&rig, &["adopt", "--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["adopted"], 2, "{stdout}");
    let strays = report["strays"].as_array().unwrap();
    assert_eq!(strays.len(), 1, "{stdout}");
    assert_eq!(
        strays[0][0], "meter-a1/2023/08/18/11/meter_A1_20230818T1010.csv",
        "{stdout}"
    );

    let out = with_config(&rig, &["run", "--once", "--min-age-secs", "0", "--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        report["feeds"]["meter"]["copied"], 0,
        "adopted already: {stdout}"
    );
}

/// `replay --feed` recovers a declared feed's window from the feed's own source: every slot of
/// the window is looked up, a file never ingested (landed behind the newest slot) and files
/// missing or different in Bronze are copied, and a file wrong in Bronze and gone from the
/// source is reported lost (exit 1). `--dry-run` changes nothing.
#[test]
fn replay_recovers_a_feeds_window_from_the_feeds_source() {
    let rig = Rig::new();
    write_feed_config(&rig, METER);
    let meters = rig.dir.path().join("meters");
    fs::create_dir(&meters).unwrap();
    let source = |hhmm: &str| meters.join(format!("meter_A1_20230818T{hhmm}.csv"));
    let body = |hhmm: &str| format!("t,kwh\n{hhmm},1\n");
    // Written an hour ago: past the minimum age, which `replay` keeps at its default.
    let write = |hhmm: &str| {
        fs::write(source(hhmm), body(hhmm)).unwrap();
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let f = fs::File::options().write(true).open(source(hhmm)).unwrap();
        f.set_modified(hour_ago).unwrap();
    };
    for hhmm in ["1000", "1005", "1010", "1015"] {
        write(hhmm);
    }
    let out = with_config(&rig, &["run", "--once", "--min-age-secs", "0"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let bronze = rig.dir.path().join("storage/bronze/meter-a1/2023/08/18");
    let at = |hh: &str, hhmm: &str| bronze.join(format!("{hh}/meter_A1_20230818T{hhmm}.csv"));
    // The outage's damage: a late file behind the newest slot, a copy lost from Bronze, one
    // overwritten there, and one lost from Bronze and the source both.
    write("0955");
    fs::remove_file(at("10", "1005")).unwrap();
    fs::write(at("10", "1010"), "garbage").unwrap();
    fs::remove_file(at("10", "1015")).unwrap();
    fs::remove_file(source("1015")).unwrap();

    let replay = |extra: &[&str]| -> (Option<i32>, serde_json::Value) {
        let mut args = vec![
            "replay",
            "--feed",
            "meter",
            "--since",
            "2023-08-18T09:50",
            "--until",
            "2023-08-18T10:20",
            "--json",
        ];
        args.extend_from_slice(extra);
        let out = with_config(&rig, &args);
        let (stdout, stderr) = text(&out);
        let report =
            serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"));
        (out.status.code(), report)
    };
    let steps = |report: &serde_json::Value| -> Vec<(String, String)> {
        (report["plan"]["copy"].as_array().unwrap().iter())
            .map(|s| {
                (
                    s["file"].as_str().unwrap().into(),
                    s["why"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let expected: Vec<(String, String)> = [
        ("0955", "NotIngested"),
        ("1005", "MissingInBronze"),
        ("1010", "BronzeDiffers"),
    ]
    .iter()
    .map(|(hhmm, why)| (format!("meter_A1_20230818T{hhmm}.csv"), why.to_string()))
    .collect();

    let (code, dry) = replay(&["--dry-run"]);
    assert_eq!(code, Some(1), "a file is lost: {dry}");
    assert_eq!(steps(&dry), expected, "{dry}");
    assert_eq!(
        dry["plan"]["minutes_checked"], 7,
        "09:50 to 10:20, every 5 minutes"
    );
    assert_eq!(
        dry["plan"]["unrecoverable"][0]["file"], "meter_A1_20230818T1015.csv",
        "{dry}"
    );
    assert!(!at("10", "1005").exists(), "a dry run changes nothing");

    let (code, done) = replay(&[]);
    assert_eq!(code, Some(1), "{done}");
    assert_eq!(done["result"]["copied"], 3, "{done}");
    for (hh, hhmm) in [("09", "0955"), ("10", "1005"), ("10", "1010")] {
        assert_eq!(
            fs::read_to_string(at(hh, hhmm)).unwrap(),
            body(hhmm),
            "{hhmm}"
        );
    }
    let (_, again) = replay(&["--dry-run"]);
    assert_eq!(
        steps(&again),
        Vec::<(String, String)>::new(),
        "all recovered: {again}"
    );

    let out = with_config(
        &rig,
        &["replay", "--feed", "metre", "--since", "2023-08-18"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("--feed metre: no such feed") && stderr.contains("meter"),
        "names the typo and the feeds there are: {stderr}"
    );
}

/// After its first pass lists the source, a declared feed predicts its next names: the next
/// slots are looked up, no listing is made, the files after the newest are copied at once, and
/// one that lands behind the newest waits for a listing (`--scan` here, the nightly one in
/// operation).
#[test]
fn a_declared_feed_predicts_its_next_names_after_its_first_listing() {
    let rig = Rig::new();
    write_feed_config(&rig, METER);
    let meters = rig.dir.path().join("meters");
    fs::create_dir(&meters).unwrap();
    let put = |hhmm: &str| {
        let name = format!("meter_A1_20230818T{hhmm}.csv");
        fs::write(meters.join(name), format!("t,kwh\n{hhmm},1\n")).unwrap();
    };
    // No nightly listing between the runs, whatever the time of day.
    let nightly = crate::util::nightly_hour_far_from_now();
    let run = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["run", "--once", "--min-age-secs", "0", "--json"];
        args.extend_from_slice(&["--nightly-hour", &nightly]);
        args.extend_from_slice(extra);
        let out = with_config(&rig, &args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
        let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        report["feeds"]["meter"].clone()
    };
    put("1000");
    put("1005");
    let first = run(&[]);
    assert_eq!(
        (&first["mode"], &first["copied"], &first["listings"]),
        (&"listing".into(), &2.into(), &1.into()),
        "the first pass lists: {first}"
    );

    put("1010");
    put("1015");
    put("0955");
    let second = run(&[]);
    assert_eq!(
        (&second["mode"], &second["copied"], &second["listings"]),
        (&"prediction".into(), &2.into(), &0.into()),
        "10:10 and 10:15 by prediction, without a listing: {second}"
    );
    // 10:10 and 10:15 found, then the gap limit's 10 misses (10:20 to 11:05), then the slot
    // at the wall clock and the one before it (the stream is silent there): 14; and the copy
    // pipeline's one look after staging each of the 2 files.
    assert_eq!(second["lookups"], 16, "{second}");
    let bronze = rig.dir.path().join("storage/bronze/meter-a1/2023/08/18");
    assert!(bronze.join("10/meter_A1_20230818T1015.csv").is_file());
    assert!(
        !bronze.join("09/meter_A1_20230818T0955.csv").exists(),
        "behind the newest slot: not predicted"
    );

    let scan = run(&["--scan"]);
    assert_eq!(
        (&scan["mode"], &scan["copied"]),
        (&"listing".into(), &1.into()),
        "{scan}"
    );
    assert!(bronze.join("09/meter_A1_20230818T0955.csv").is_file());

    // The log shipped into Bronze names the feed and the stream of each of its files.
    let log = rig.dir.path().join("storage/bronze/_ingest/log");
    let mut lines = Vec::new();
    for segment in crate::util::walk(&log) {
        if segment.to_string_lossy().ends_with(".jsonl.gz") {
            let mut text = String::new();
            let file = fs::File::open(&segment).unwrap();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(file), &mut text)
                .unwrap();
            lines.extend(
                text.lines()
                    .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()),
            );
        }
    }
    let copied: Vec<_> = (lines.iter())
        .filter(|l| l["kind"] == "copied")
        .map(|l| (l["v"].clone(), l["feed"].clone(), l["stream"].clone()))
        .collect();
    assert_eq!(copied.len(), 5, "{lines:?}");
    assert!(
        (copied.iter()).all(|c| *c == (2.into(), "meter".into(), "A1".into())),
        "{copied:?}"
    );
}

/// A feed of a shape the seed's flows do not run (the 5-minute meter) is declared and
/// checked by `config check`, and `run --once` runs it by listing its source: each file its
/// pattern reads lands in the feed's layout, a name it does not read and a stream it does not
/// declare are recorded as skipped, a CSV whose last line has no line break waits, and a second
/// run copies nothing. `log` shows the feed's declaration and `audit` finds nothing unknown in
/// Bronze (the daemon's run of such a feed: `daemon::a_declared_feed_runs_in_the_daemon_by_listing`).
#[test]
fn a_feed_of_another_shape_runs_by_listing_with_run_once() {
    let rig = Rig::new();
    let config = example_config(&rig);
    let meter = "\n[[feed]]\nname = \"meter\"\nsource = \"meters\"\n\
                 pattern = \"meter_{stream}_{YYYY}{MM}{DD}T{HH}{mi}.csv\"\ncadence = \"5m\"\n\
                 streams = { A1 = \"meter-a1\" }\ncheck = \"csv\"\ntimezone = \"Europe/Zurich\"\n";
    let mut text_ = fs::read_to_string(&config).unwrap();
    text_.push_str(meter);
    fs::write(&config, text_).unwrap();
    let meters = rig.dir.path().join("meters");
    fs::create_dir(&meters).unwrap();
    for (name, body) in [
        ("meter_A1_20230818T1000.csv", "t,kwh\n10:00,1\n"),
        ("meter_A1_20230818T1005.csv", "t,kwh\n10:05,2\n"),
        ("meter_A1_20230818T1110.csv", "t,kwh\n11:10,3\n"),
        ("meter_A1_20230818T1012.csv", "off the 5-minute grid\n"),
        ("meter_B7_20230818T1000.csv", "a stream not declared\n"),
        ("meter_A1_20230818T1015.csv", "t,kwh\n10:15,4"),
    ] {
        fs::write(meters.join(name), body).unwrap();
    }
    let out = config_check(&rig);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("feed `meter`: source meters reached (run by prediction"),
        "{stdout}"
    );
    let run = |extra: &[&str]| {
        let mut args = vec![
            "--config",
            "ingest.toml",
            "run",
            "--once",
            "--min-age-secs",
            "0",
        ];
        args.extend_from_slice(extra);
        ingest(rig.dir.path(), &args, &[])
    };
    let out = run(&["--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let meter = &report["feeds"]["meter"];
    assert_eq!(meter["mode"], "listing", "{stdout}");
    assert_eq!(
        (
            &meter["copied"],
            &meter["skipped"],
            &meter["deferred"],
            &meter["listed"]
        ),
        (&3.into(), &2.into(), &1.into(), &6.into()),
        "{stdout}"
    );
    let bronze = rig.dir.path().join("storage/bronze");
    for rel in [
        "meter-a1/2023/08/18/10/meter_A1_20230818T1000.csv",
        "meter-a1/2023/08/18/10/meter_A1_20230818T1005.csv",
        "meter-a1/2023/08/18/11/meter_A1_20230818T1110.csv",
    ] {
        assert!(bronze.join(rel).is_file(), "{rel} in the feed's layout");
    }
    let held: Vec<_> = crate::util::walk(&bronze)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("meter"))
        .collect();
    assert_eq!(
        held.len(),
        3,
        "nothing else of the feed in Bronze: {held:?}"
    );

    let out = run(&["--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let again: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        again["feeds"]["meter"]["deferred"], 1,
        "the CSV still waits: {stdout}"
    );

    // `status` shows the feed from the store: its stream's newest slot and files, its files
    // by state.
    let out = with_config(&rig, &["status", "--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let mut status: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    // The newest slot's age grows with the clock; 11:10 on 2023-08-18 in Zurich is 09:10 UTC.
    let age = status["feeds"][0]["streams"][0]["age_secs"].take();
    let newest_utc = chrono::DateTime::parse_from_rfc3339("2023-08-18T09:10:00Z").unwrap();
    let expected_age = chrono::Utc::now().timestamp() - newest_utc.timestamp();
    assert!(
        (age.as_i64().unwrap() - expected_age).abs() < 600,
        "{age} vs {expected_age}"
    );
    // Missing: 10:10 to 11:05 (10:15 still waits), 12 files, all within the last 24 h.
    assert_eq!(
        status["feeds"],
        serde_json::json!([{"name": "meter", "cadence": "5m",
            "streams": [{"stream": "meter/A1", "alias": "meter-a1",
                "newest": "2023-08-18T11:10", "files": 3, "age_secs": null,
                "missing_24h": 12, "missing_total": 12}],
            "files": {"ingested": 3, "skipped": 2, "discovered": 1}}]),
        "{stdout}"
    );

    // Gaps every 5 minutes: 10:00, 10:05 and 11:10 are in; 10:10 to 11:05 are not (the CSV
    // of 10:15 still waits), one run of 12 slots.
    let out = with_config(&rig, &["gaps", "--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a missing run: {stdout}{stderr}"
    );
    let gaps: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let of_meter = |part: &str| -> Vec<serde_json::Value> {
        (gaps[part].as_array().unwrap().iter())
            .filter(|g| g["stream"] == "meter/A1")
            .cloned()
            .collect()
    };
    assert_eq!(
        of_meter("gaps"),
        [
            serde_json::json!({"stream": "meter/A1", "from": "2023-08-18T10:10",
            "to": "2023-08-18T11:05", "minutes": 60, "kind": "missing"})
        ],
        "{stdout}"
    );
    let summary = &of_meter("streams")[0];
    assert_eq!(
        (
            &summary["alias"],
            &summary["expected"],
            &summary["present"],
            &summary["missing"]
        ),
        (&"meter-a1".into(), &15.into(), &3.into(), &12.into()),
        "{stdout}"
    );
    assert_eq!(again["feeds"]["meter"]["copied"], 0, "{stdout}");
    assert_eq!(
        again["feeds"]["meter"]["skipped"], 0,
        "settled skips: {stdout}"
    );

    let out = with_config(&rig, &["log", "--json"]);
    let (log, _) = text(&out);
    assert!(
        log.lines()
            .filter(|l| l.contains("\"feed-declared\""))
            .count()
            == 1
            && log.contains("\"pattern\":\"meter_{stream}_{YYYY}{MM}{DD}T{HH}{mi}.csv\""),
        "declared once, with its pattern: {log}"
    );
    let out = with_config(&rig, &["audit", "--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let audit: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        audit["summary"]["unknown_in_bronze"], 0,
        "the feed's files are known: {stdout}"
    );
    assert_eq!(
        audit["problems"].as_array().map(Vec::len),
        Some(0),
        "{stdout}"
    );
}

/// `config show` says where every value came from: a flag, the environment, the file or the
/// default; a password in the environment is said to be set, never shown.
#[test]
fn config_show_names_each_values_origin_and_never_a_secret() {
    let rig = Rig::new();
    example_config(&rig);
    let out = ingest(
        rig.dir.path(),
        &[
            "--config",
            "ingest.toml",
            "config",
            "show",
            "--state",
            "s.redb",
        ],
        &[("INTERVAL_SECS", "5"), ("SMB_PASSWORD", "hunter2")],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let origin = |key: &str| {
        let line = (stdout.lines())
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key}: {stdout}"));
        line.rsplit("# ").next().unwrap().trim().to_owned()
    };
    assert_eq!(origin("state"), "flag");
    assert_eq!(origin("interval_secs"), "env");
    assert_eq!(origin("nightly_hour"), "file");
    assert_eq!(origin("gap_minutes"), "default");
    assert_eq!(origin("smb_path"), "file", "set by the sensors feed");
    assert!(stdout.contains("interval_secs = 5 "), "{stdout}");
    assert!(stdout.contains("SMB_PASSWORD is set in the environment (not shown)"));
    assert!(!stdout.contains("hunter2") && !stderr.contains("hunter2"));
}

/// The share named twice in one file (the `smb_path` key and a sensors feed) is refused:
/// which one runs would be a guess.
#[test]
fn a_share_named_by_a_key_and_a_feed_is_refused() {
    let rig = Rig::new();
    let config = example_config(&rig);
    let example = fs::read_to_string(&config).unwrap();
    fs::write(&config, format!("smb_path = \"share\"\n{example}")).unwrap();
    let out = with_config(&rig, &["run", "--once"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("feed `sensors` and `smb_path`"), "{stderr}");
}

/// With nothing configured, `config check` does not say all is well: a FAIL line names every
/// way to declare a feed (exit 1), as `run` would refuse to start.
#[test]
fn config_check_with_no_feed_fails_naming_how_to_declare_one() {
    let rig = Rig::new();
    let out = ingest(rig.dir.path(), &["config", "check"], &[]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("no config file: valid, 0 feed(s)"),
        "{stdout}"
    );
    let fail = stdout
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .unwrap_or_default();
    for way in ["SMB_PATH", "sftp_host", "[[feed]]"] {
        assert!(fail.contains(way), "names {way}: {stdout}");
    }
}

/// `config check` refuses what `run` would refuse when it starts (a `[run]` interval of 0,
/// exit 2 naming it); a weather feed and a top-level sFTP key for the same flow are refused
/// (one would be silently ignored); `--config` before `service install` is refused (it would
/// not reach the service).
#[test]
fn config_check_refuses_what_run_would_and_nothing_is_silently_ignored() {
    let rig = Rig::new();
    let config = example_config(&rig);
    let example = fs::read_to_string(&config).unwrap();
    fs::write(
        &config,
        example.replace("interval_secs = 60", "interval_secs = 0"),
    )
    .unwrap();
    let out = config_check(&rig);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("--interval-secs"), "{stderr}");

    let weather = "\n[[feed]]\nname = \"weather\"\nsource = \"sftp://u@127.0.0.1/x\"\n\
                   pattern = \"Pred_{YYYY}-{MM}-{DD}.csv\"\ncadence = \"1d\"\nalias = \"weather\"\n\
                   password_file = \"pw\"\nknown_hosts = \"kh\"\n";
    fs::write(
        &config,
        format!("sftp_user = \"other\"\n{example}{weather}"),
    )
    .unwrap();
    let out = config_check(&rig);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("feed `weather` and `sftp_user`"),
        "{stderr}"
    );

    fs::write(&config, &example).unwrap();
    let out = with_config(&rig, &["service", "install"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("put it after `--`"), "{stderr}");
}

/// A feed run by listing may not write into a folder of the seed's configured flows: a meter
/// whose alias is a sensor stream's (the sensors set by `--smb-path` and the default streams,
/// not by a table) is refused when the configuration is read (exit 2 naming the feed and the
/// folder), before anything is reached or written.
#[test]
fn a_feed_into_a_folder_of_the_seeds_flows_is_refused() {
    let rig = Rig::new();
    write_feed_config(
        &rig,
        "name = \"meter\"\nsource = \"meters\"\n\
         pattern = \"meter_{stream}_{YYYY}{MM}{DD}T{HH}{mi}.csv\"\ncadence = \"5m\"\n\
         streams = { A1 = \"jimmy\" }\ncheck = \"csv\"\n",
    );
    let share = rig.share.to_str().unwrap();
    for args in [&["config", "check"][..], &["run", "--once"][..]] {
        let mut all = vec!["--config", "ingest.toml", "--smb-path", share];
        all.extend_from_slice(args);
        let out = ingest(rig.dir.path(), &all, &[]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
        assert!(
            stderr.contains("feed `meter`: its Bronze folder `jimmy` is also the sensors flow's"),
            "{args:?}: {stderr}"
        );
    }
    assert!(!rig.dir.path().join("storage").exists(), "nothing written");
}

/// A feed of another shape than the seed's may not take a seed flow's name (`weather` labels
/// the seed's flow in the metrics, heartbeats and the log): refused when the config is read,
/// exit 2, naming the feed, nothing written.
#[test]
fn a_feed_named_as_a_seed_flow_but_of_another_shape_is_refused() {
    let rig = Rig::new();
    write_feed_config(
        &rig,
        "name = \"weather\"\nsource = \"obs\"\npattern = \"obs_{YYYY}{MM}{DD}{HH}.csv\"\n\
         cadence = \"1h\"\nalias = \"obs\"\ncheck = \"csv\"\n",
    );
    for args in [&["config", "check"][..], &["run", "--once"][..]] {
        let mut all = vec!["--config", "ingest.toml"];
        all.extend_from_slice(args);
        let out = ingest(rig.dir.path(), &all, &[]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
        assert!(
            stderr.contains("feed `weather`: the name is the seed's weather flow's"),
            "{args:?}: {stderr}"
        );
    }
    assert!(!rig.dir.path().join("storage").exists(), "nothing written");
}

/// A daily feed run by listing (one file a day, no `{stream}`) with a day that never came:
/// `gaps` shows that day as one missing run of 1,440 minutes, exit 1, and the feed's other
/// days as present.
#[test]
fn a_daily_feed_with_a_missing_day_shows_the_day_in_gaps() {
    let rig = Rig::new();
    write_feed_config(
        &rig,
        "name = \"energy\"\nsource = \"exports\"\npattern = \"energy_{YYYY}{MM}{DD}.csv\"\n\
         cadence = \"1d\"\nalias = \"energy\"\ncheck = \"csv\"\n",
    );
    let exports = rig.dir.path().join("exports");
    fs::create_dir(&exports).unwrap();
    for day in ["01", "02", "04", "05"] {
        fs::write(exports.join(format!("energy_202308{day}.csv")), "kwh\n12\n").unwrap();
    }
    let out = ingest(
        rig.dir.path(),
        &[
            "--config",
            "ingest.toml",
            "run",
            "--once",
            "--min-age-secs",
            "0",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert!(rig
        .dir
        .path()
        .join("storage/bronze/energy/2023/08/04/energy_20230804.csv")
        .is_file());
    let out = with_config(&rig, &["gaps", "--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let gaps: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        gaps["gaps"],
        serde_json::json!([{"stream": "energy/", "from": "2023-08-03T00:00",
            "to": "2023-08-03T00:00", "minutes": 1440, "kind": "missing"}]),
        "{stdout}"
    );
    let summary = (gaps["streams"].as_array().unwrap().iter())
        .find(|s| s["stream"] == "energy/")
        .unwrap();
    assert_eq!(
        (&summary["alias"], &summary["expected"], &summary["present"]),
        (&"energy".into(), &5.into(), &4.into()),
        "{stdout}"
    );
    // `status` counts the day among the feed's missing files in all, not in the last 24 h of
    // its index (the 5th alone).
    let out = with_config(&rig, &["status", "--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let status: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let stream = &status["feeds"][0]["streams"][0];
    assert_eq!(
        (&stream["missing_24h"], &stream["missing_total"]),
        (&0.into(), &1.into()),
        "{stdout}"
    );
}

/// An hourly feed in another zone than the machine's, across both DST nights of
/// Europe/Zurich: on 2023-03-26 its clock never shows 02:00, which `gaps` shows as
/// `dst-skipped`, not missing; on 2023-10-29 the hour 02:00 comes twice and its one name is
/// expected once. Every file lands at its naive hour.
#[test]
fn an_hourly_feed_in_another_zone_across_its_dst_nights() {
    let rig = Rig::new();
    write_feed_config(
        &rig,
        "name = \"obs\"\nsource = \"obs\"\npattern = \"obs_{YYYY}{MM}{DD}{HH}.csv\"\n\
         cadence = \"1h\"\nalias = \"obs\"\ncheck = \"csv\"\ntimezone = \"Europe/Zurich\"\n",
    );
    let obs = rig.dir.path().join("obs");
    fs::create_dir(&obs).unwrap();
    for (day, hours) in [("20230326", [0, 1, 3, 4]), ("20231029", [0, 1, 2, 3])] {
        for hour in hours {
            fs::write(obs.join(format!("obs_{day}{hour:02}.csv")), "t\n1\n").unwrap();
        }
    }
    let run = [
        "--config",
        "ingest.toml",
        "run",
        "--once",
        "--min-age-secs",
        "0",
    ];
    let out = ingest(rig.dir.path(), &run, &[("TZ", "UTC")]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let bronze = rig.dir.path().join("storage/bronze/obs/2023");
    assert!(bronze.join("03/26/03/obs_2023032603.csv").is_file());
    assert!(bronze.join("10/29/02/obs_2023102902.csv").is_file());
    for (since, until, skipped) in [
        ("2023-03-26T00:00", "2023-03-26T04:00", true),
        ("2023-10-29T00:00", "2023-10-29T03:00", false),
    ] {
        let args = [
            "--config",
            "ingest.toml",
            "gaps",
            "--json",
            "--since",
            since,
            "--until",
            until,
        ];
        let out = ingest(rig.dir.path(), &args, &[("TZ", "UTC")]);
        let (stdout, stderr) = text(&out);
        let gaps: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        let of_obs: Vec<&serde_json::Value> = (gaps["gaps"].as_array().unwrap().iter())
            .filter(|g| g["stream"] == "obs/")
            .collect();
        let summary = (gaps["streams"].as_array().unwrap().iter())
            .find(|s| s["stream"] == "obs/")
            .unwrap();
        assert_eq!(summary["missing"], 0, "{since}: {stdout}{stderr}");
        assert_eq!(summary["present"], 4, "{since}: {stdout}");
        if skipped {
            assert_eq!(
                of_obs,
                [
                    &serde_json::json!({"stream": "obs/", "from": "2023-03-26T02:00",
                    "to": "2023-03-26T02:00", "minutes": 60, "kind": "dst-skipped"})
                ],
                "{stdout}"
            );
        } else {
            assert!(of_obs.is_empty(), "{stdout}");
        }
    }
}
