//! Bronze on object storage through the real binary, against a real S3-compatible store on
//! loopback (Garage, `tests/garage.rs`): the folder layout's keys, every command, a store that
//! goes away, and SIGKILLs mid-upload and between upload and commit.

use crate::garage::Garage;
use crate::util::{output_of, sensor_names, walk, Rig};
use ingest::naming::SensorName;
use serde_json::Value;
use std::fs;
use std::process::Output;

/// The object key of a sensor file below `prefix`.
fn key_of(prefix: &str, name: &str) -> String {
    let n = SensorName::parse(name).unwrap();
    let alias = if n.apartment == "JimmyLoup" {
        "jimmy"
    } else {
        "jeremie"
    };
    format!("{prefix}/{}", ingest::bronze::layout::sensor_rel(alias, &n))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output, code: i32) -> Value {
    assert_eq!(out.status.code(), Some(code), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ingested(rig: &Rig) -> u64 {
    rig.status()["files"]["ingested"].as_u64().unwrap_or(0)
}

/// `audit --json` findings as (finding, Bronze path) pairs, sorted.
fn findings(report: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
            (s("finding"), s("bronze"))
        })
        .collect();
    out.sort();
    out
}

/// Every source file is in the bucket exactly once with its bytes, under the key the folder
/// layout gives it, and nothing else is there.
fn assert_bucket_mirrors_share(garage: &Garage, rig: &Rig, prefix: &str) {
    let names = sensor_names(&rig.share);
    let mut want: Vec<String> = names.iter().map(|n| key_of(prefix, n)).collect();
    want.sort();
    let shipped = garage.keys(prefix);
    assert!(
        shipped
            .iter()
            .any(|k| k.starts_with("_ingest/log/") && k.ends_with("/manifest.json")),
        "the log is shipped into the bucket: {shipped:?}"
    );
    let have: Vec<String> = garage
        .data_keys(prefix)
        .into_iter()
        .map(|k| format!("{prefix}/{k}"))
        .collect();
    assert_eq!(have, want, "the bucket holds each file once, nothing else");
    for name in &names {
        let bytes = fs::read(rig.share.join(name)).unwrap();
        assert_eq!(garage.get(&key_of(prefix, name)), bytes, "{name}");
    }
}

/// The whole sensor flow into a bucket: a first ingest, prediction, a late file found by
/// `--scan`, `status`, the hook and `audit` all work, and the bucket holds exactly the keys the
/// folder layout gives (a local Bronze over the same share has the same relative paths), each
/// object with the source's bytes and its blake3 in the object's metadata.
#[test]
fn a_bucket_holds_the_folder_layout_and_every_command_works_on_it() {
    let garage = Garage::start();
    let rig = garage.rig("raw/sensors");
    let mut local = Rig::new();
    local.source = rig.share.clone();
    rig.add_minutes(0, 200);

    let first = rig.pass(&[], 0);
    assert_eq!(first["copied"], 400, "{first}");
    local.pass(&[], 0);
    let relative: Vec<String> = walk(&local.bronze)
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(&local.bronze).unwrap();
            rel.iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect();
    let mut relative = relative;
    relative.sort();
    assert_eq!(
        garage.data_keys("raw/sensors"),
        relative,
        "same tree as a folder"
    );
    let name = &sensor_names(&rig.share)[0];
    let key = key_of("raw/sensors", name);
    let hash = blake3::hash(&fs::read(rig.share.join(name)).unwrap()).to_hex();
    assert_eq!(garage.recorded_hash(&key).as_deref(), Some(hash.as_str()));

    // 60 new minutes by prediction (no listing), a late file only a scan finds.
    rig.add_minutes(200, 60);
    let next = rig.pass(&[], 0);
    assert_eq!(
        (next["copied"].as_u64(), next["listings"].as_u64()),
        (Some(120), Some(0)),
        "{next}"
    );
    rig.add_minutes(-5, 1);
    let scan = rig.pass(&["--scan"], 0);
    assert_eq!(scan["copied"], 2, "{scan}");
    assert_bucket_mirrors_share(&garage, &rig, "raw/sensors");

    // The hook gets object URLs and the layer's URL.
    rig.add_minutes(260, 2);
    let seen = rig.dir.path().join("hook.txt");
    let hook = format!(
        "echo \"$INGEST_BRONZE_ROOT\" > '{0}'; cat \"$INGEST_MANIFEST\" >> '{0}'",
        seen.display()
    );
    rig.pass(&["--on-new", &hook], 0);
    let lines: Vec<String> = fs::read_to_string(&seen)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines[0], "s3://bronze/raw/sensors");
    assert!(lines[1..]
        .iter()
        .all(|l| l.starts_with("s3://bronze/raw/sensors/j") && l.ends_with("_received.json")));
    let newest = format!(
        "s3://bronze/{}",
        key_of("raw/sensors", "18.08.2023 1421_JimmyLoup_received.json")
    );
    assert!(
        lines.contains(&newest),
        "the hook is handed the new object's URL"
    );

    let status = rig.status();
    assert_eq!(status["files"]["ingested"], 526, "{status}");
    let audit = rig.audit_clean();
    assert_eq!(audit["summary"]["checked"], 526);
}

/// `audit` finds a deleted object, a corrupted one and one the index does not know (and no
/// console-made "folder" object);
/// `--repair` restores the first two from the share (the corrupt bytes kept aside as an
/// object), and `adopt` records the unknown one: then the audit is clean.
#[test]
fn audit_repair_and_adopt_work_on_objects() {
    let garage = Garage::start();
    let rig = garage.rig("raw");
    rig.add_minutes(0, 10);
    rig.pass(&[], 0);
    let names = sensor_names(&rig.share);
    let (gone, corrupt) = (&names[0], &names[1]);
    garage.delete(&key_of("raw", gone));
    garage.put(&key_of("raw", corrupt), b"{\"not\": \"the data\"}");
    let unknown = "18.08.2023 0900_JimmyLoup_received.json";
    garage.put(&key_of("raw", unknown), b"{\"from\": \"the old pipeline\"}");
    // "Folders" a console made (empty objects whose keys end in `/`) are not files.
    garage.put_raw("raw/jimmy/", b"");
    garage.put_raw("raw/jeremie/2023/08/", b"");

    let report = json(&rig.run(&["audit", "--json", "--no-source"]), 1);
    let rel = |n: &str| key_of("raw", n)["raw/".len()..].to_owned();
    assert_eq!(
        findings(&report),
        vec![
            ("bronze-corrupt".to_owned(), rel(corrupt)),
            ("missing-in-bronze".to_owned(), rel(gone)),
            ("unknown-in-bronze".to_owned(), rel(unknown)),
        ]
    );

    json(&rig.run(&["audit", "--json", "--repair"]), 1);
    for name in [gone, corrupt] {
        let bytes = fs::read(rig.share.join(name)).unwrap();
        assert_eq!(garage.get(&key_of("raw", name)), bytes, "{name} restored");
    }
    let kept: Vec<String> = garage
        .keys("raw")
        .into_iter()
        .filter(|k| k.contains(".kept-"))
        .collect();
    assert_eq!(kept.len(), 1, "the corrupt bytes are kept aside: {kept:?}");
    assert_eq!(
        garage.get(&format!("raw/{}", kept[0])),
        b"{\"not\": \"the data\"}"
    );

    let adopted = json(&rig.run(&["adopt", "--json"]), 0);
    assert_eq!(
        adopted["adopted"], 1,
        "the unknown file (kept bytes are not data): {adopted}"
    );
    let report = json(&rig.run(&["audit", "--json", "--no-source"]), 0);
    assert_eq!(findings(&report), vec![], "{report}");
}

/// A first run over an empty index and a bucket prefix that already holds the files (a
/// second machine, or a lost store) adopts them without uploading anything; `replay` puts
/// back objects deleted from a window; a file changed on the share becomes a new version with
/// the previous object kept aside.
#[test]
fn adopt_replay_and_a_changed_source_against_the_bucket() {
    let garage = Garage::start();
    let rig = garage.rig("lake");
    rig.add_minutes(0, 30);
    rig.pass(&[], 0);

    let mut second = garage.rig("lake");
    second.source = rig.share.clone();
    // While the first ingester lives, a second one of the same flow is refused (its heartbeat
    // is fresh); once that machine is gone (its heartbeat removed, as README says), the
    // second starts and adopts.
    let refused = second.run(&["run", "--once"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    forget_heartbeats(&garage, "lake");
    let first = second.pass(&[], 0);
    assert_eq!(first["copied"], 0, "nothing uploaded again: {first}");
    assert_eq!(ingested(&second), 60, "every object adopted");

    let names = sensor_names(&rig.share);
    for name in &names[..4] {
        garage.delete(&key_of("lake", name));
    }
    let window = [
        "replay",
        "--json",
        "--since",
        "2023-08-18",
        "--until",
        "2023-08-18T10:02",
    ];
    let done = json(&rig.run(&window), 0);
    assert_eq!(done["result"]["copied"], 4, "{done}");
    assert_bucket_mirrors_share(&garage, &rig, "lake");
    // Back to the first ingester: the second one is gone now.
    forget_heartbeats(&garage, "lake");

    let changed = &names[5];
    let old = fs::read(rig.share.join(changed)).unwrap();
    fs::write(rig.share.join(changed), b"{\"changed\": true}").unwrap();
    let scan = rig.pass(&["--scan", "--min-age-secs", "0"], 0);
    assert_eq!(scan["copied"], 1, "{scan}");
    assert_eq!(garage.get(&key_of("lake", changed)), b"{\"changed\": true}");
    let kept: Vec<String> = garage
        .keys("lake")
        .into_iter()
        .filter(|k| k.contains(".kept-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(garage.get(&format!("lake/{}", kept[0])), old);
    rig.audit_clean();
}

/// Removes every ingester's heartbeat below `prefix`: those machines are gone.
fn forget_heartbeats(garage: &Garage, prefix: &str) {
    for key in garage.keys(prefix) {
        if key.starts_with("_ingest/ingesters/") {
            garage.delete(&format!("{prefix}/{key}"));
        }
    }
}

/// A store that is down ends the pass as an outage (exit 2 naming Bronze; nothing recorded as
/// copied, nothing lost),
/// and after it is back the next pass copies everything; then the daemon, with weather from a
/// real sshd, lands both flows in the bucket and stops cleanly on SIGTERM.
// Both flows: the weather one needs the sFTP client.
#[cfg(feature = "sftp")]
#[test]
fn a_store_that_goes_away_loses_nothing_and_the_daemon_lands_both_flows() {
    let garage = Garage::start();
    let rig = garage.rig("raw");
    rig.add_minutes(0, 20);
    garage.stop();
    let out = rig.run(&["run", "--once", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Bronze s3://bronze/raw is not reachable"),
        "an outage, said as one: {}",
        stderr(&out)
    );
    assert_eq!(ingested(&rig), 0);
    garage.resume();
    let next = rig.pass(&[], 0);
    assert_eq!(next["copied"], 40, "{next}");
    assert_bucket_mirrors_share(&garage, &rig, "raw");

    let sshd = crate::sshd::Sshd::start();
    let days = crate::weather::put_days(&sshd, 3);
    rig.add_minutes(20, 5);
    let mut args = vec!["--weather-interval-secs".to_owned(), "1".to_owned()];
    args.extend(crate::weather::key_login(&sshd));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = rig.daemon_cmd(&args).spawn().unwrap();
    let want_weather: Vec<String> = days
        .iter()
        .map(|d| format!("weather/{}/{}/{}/{d}", &d[5..9], &d[10..12], &d[13..15]))
        .collect();
    crate::util::wait_for("both flows in the bucket", || {
        let keys = garage.data_keys("raw");
        keys.len() == 50 + 3 && want_weather.iter().all(|w| keys.contains(w))
    });
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success(), "the daemon stops cleanly");
    rig.audit_clean();
}

/// Bad configuration is exit 2 naming it, before anything is read: a bucket name that is
/// not one, a missing key. A wrong secret is exit 2 too, naming Bronze and the store's refusal
/// (403), copies nothing, and never shows the secret in any output.
#[test]
fn bad_object_store_settings_are_clear_errors_and_the_secret_is_never_shown() {
    let garage = Garage::start();
    let mut rig = garage.rig("raw");
    rig.add_minutes(0, 2);
    let mut bad = Rig::new();
    bad.bronze = "s3://Not_A_Bucket/x".into();
    let out = bad.run(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--bronze-root"), "{}", stderr(&out));

    let key = rig
        .env
        .iter()
        .position(|(k, _)| *k == "AWS_ACCESS_KEY_ID")
        .unwrap();
    let saved = rig.env.remove(key);
    let out = rig.run(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("AWS_ACCESS_KEY_ID"),
        "{}",
        stderr(&out)
    );
    rig.env.push(saved);

    let secret = "s3cr3t-that-is-wrong-0123456789abcdef";
    for (k, v) in rig.env.iter_mut() {
        if *k == "AWS_SECRET_ACCESS_KEY" {
            *v = secret.to_owned();
        }
    }
    let out = output_of(&mut rig.cmd(&["run", "--once"]));
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    let last = said.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("ingest: Bronze s3://bronze/raw ") && last.contains("403"),
        "the cause: the bucket refused the signature: {said}"
    );
    let log = String::from_utf8_lossy(&rig.run(&["log"]).stdout).into_owned();
    for text in [
        stderr(&out),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        log,
    ] {
        assert!(!text.contains(secret), "the secret leaked: {text}");
    }
    assert_eq!(ingested(&rig), 0);
}

/// SIGKILL at random moments during a first ingest into the bucket (small batches, so kills
/// land while staging, mid-upload, and between the uploads and their commit), then one run to
/// the end: never a partial object under a final name, every file exactly once, the log
/// knows every object (those uploaded before a kill are adopted from the journal), and the
/// audit finds nothing unknown. A 20 MiB file goes up in parts, so kills also land mid
/// multipart upload. The test checks that at least one kill left objects the log did not know
/// yet (the between-upload-and-commit instant), so it cannot pass without covering it.
#[test]
fn sigkill_mid_upload_and_before_commit_leaves_every_object_once_and_whole() {
    let garage = Garage::start();
    let rig = garage.rig("raw");
    rig.add_minutes(0, 1500);
    let big = "18.08.2023 1000_JimmyLoup_received.json";
    let pad = "x".repeat(20 << 20);
    fs::write(rig.share.join(big), format!("{{\"pad\": \"{pad}\"}}")).unwrap();
    let n = sensor_names(&rig.share).len();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let (mut kills, mut ahead_of_log) = (0, 0);
    for _ in 0..12 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = rig
            .cmd(&["run", "--once", "--batch-size", "40", "--min-age-secs", "0"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(150 + seed % 700));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
        }
        // A kill counts only if it ended the run: one that lands just after the run finished
        // interrupted nothing.
        let status = child.wait().unwrap();
        kills += usize::from(std::os::unix::process::ExitStatusExt::signal(&status) == Some(9));
        let keys = garage.data_keys("raw");
        for key in &keys {
            let name = key.rsplit('/').next().unwrap();
            let bytes = fs::read(rig.share.join(name)).unwrap();
            assert!(
                garage.get(&format!("raw/{key}")) == bytes,
                "partial object {key}"
            );
        }
        if keys.len() as u64 > ingested(&rig) {
            ahead_of_log += 1;
        }
        if keys.len() == n {
            break;
        }
    }
    assert!(kills >= 3, "killed {kills} times");
    assert!(
        ahead_of_log >= 1,
        "no kill landed between an upload and its commit"
    );
    let last = rig.pass(&["--min-age-secs", "0"], 0);
    println!("kills {kills}, ahead of the log {ahead_of_log} times; last pass {last}");
    assert_bucket_mirrors_share(&garage, &rig, "raw");
    assert_eq!(ingested(&rig), n as u64, "the log knows every object");
    let events = rig
        .log()
        .iter()
        .filter(|e| e["kind"] == "copied" || e["kind"] == "adopted")
        .count();
    assert_eq!(events, n, "one copied or adopted event per file");
    rig.audit_clean();
}

/// A key that is not a path (`…/10/../planted.json`, which another tool or an attacker can
/// write) makes the S3 client refuse the listing page that holds it. Such a key in an hour
/// folder once ended every pass as "Bronze … is not reachable" and copied nothing of that
/// hour; now that folder's files are looked up one by one and copied. An audit that walks
/// the bucket stops with exit 2 naming the key, never a panic.
#[test]
fn a_planted_key_that_is_not_a_path_neither_stops_ingest_nor_hides_files() {
    let garage = Garage::start();
    let rig = garage.rig("raw");
    rig.add_minutes(0, 5);
    garage.put_raw("raw/jimmy/2023/08/18/10/../planted.json", b"{}");
    let first = rig.pass(&[], 0);
    assert_eq!(first["copied"], 10, "{first}");
    assert_eq!(ingested(&rig), 10);
    let out = rig.run(&["audit", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("planted.json"), "{}", stderr(&out));
}

/// A service has none of the user's environment: a credentials file in the AWS CLI's format
/// (`S3_CREDENTIALS_FILE` / `--s3-credentials-file`, its `[default]` section, with the region
/// and an `http://` endpoint) stands in for every `AWS_*` variable, for `run` and `audit`.
#[test]
fn a_credentials_file_stands_in_for_the_aws_variables() {
    let garage = Garage::start();
    let mut rig = garage.rig("raw");
    let var = |k: &str| rig.env.iter().find(|(n, _)| *n == k).unwrap().1.clone();
    let file = rig.dir.path().join("s3-credentials");
    let text = format!(
        "[other]\naws_access_key_id = WRONG\n[default]\naws_access_key_id = {}\naws_secret_access_key = {}\nregion = {}\nendpoint_url = {}\n",
        var("AWS_ACCESS_KEY_ID"),
        var("AWS_SECRET_ACCESS_KEY"),
        var("AWS_REGION"),
        var("AWS_ENDPOINT_URL")
    );
    fs::write(&file, text).unwrap();
    rig.env = vec![("S3_CREDENTIALS_FILE", file.display().to_string())];
    rig.add_minutes(0, 3);
    let first = rig.pass(&[], 0);
    assert_eq!(first["copied"], 6, "{first}");
    assert_bucket_mirrors_share(&garage, &rig, "raw");
    rig.audit_clean();
}

/// Found in review: with no `--state`, an `s3://` Bronze used the local layout's default store
/// (`storage/ingest.redb`), so switching a default setup to a bucket found every file already
/// "ingested" and uploaded nothing, while `status` claimed the bucket held them all. Each
/// bucket and prefix now has its own default store (`storage/s3/BUCKET/PREFIX/ingest.redb`).
#[test]
fn a_bucket_without_state_gets_its_own_store_not_the_local_bronzes() {
    let garage = Garage::start();
    let rig = garage.rig("raw");
    rig.add_minutes(0, 3);
    let pass = |bronze: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ingest"));
        cmd.current_dir(rig.dir.path())
            .env_remove("INGEST_STATE")
            .env_remove("BRONZE_ROOT")
            .envs(garage.env.iter().map(|(k, v)| (k, v)))
            .args(["run", "--once", "--json", "--smb-path"])
            .arg(&rig.share)
            .args(bronze);
        json(&output_of(&mut cmd), 0)
    };
    assert_eq!(pass(&[])["copied"], 6, "into the default local Bronze");
    let bucket = pass(&["--bronze-root", "s3://bronze/raw"]);
    assert_eq!(bucket["copied"], 6, "the bucket's own log: {bucket}");
    assert_bucket_mirrors_share(&garage, &rig, "raw");
    assert!(rig
        .dir
        .path()
        .join("storage/s3/bronze/raw/ingest.redb")
        .is_file());
}

/// Runs `args` on `rig` with its object store reached through `relay`; returns the output and
/// how long the run took (reported, not asserted: the requests it made are what is counted).
fn through(rig: &Rig, relay: &crate::relay::Relay, args: &[&str]) -> (Output, std::time::Duration) {
    let mut cmd = rig.cmd(args);
    cmd.env("AWS_ENDPOINT_URL", format!("http://{}", relay.addr));
    let started = std::time::Instant::now();
    let out = output_of(&mut cmd);
    (out, started.elapsed())
}

/// Issue 25, items 5 and 6: an object store that stalls (connections accepted, no answer),
/// from the first request or mid-upload, ends the pass as one outage: exit 2, one line naming
/// the store, no file recorded as failed, nothing recorded as copied that is not in the
/// bucket. Once, a batch of 1,000 files waited for every upload, 32 at a time, each up to the
/// request timeout (about an hour at the default 120 s) and recorded the whole batch as
/// failed. What is counted: the connections the run opened into the stalled store, each a
/// request that hung; a pass that gives up at the first one opens about one round of
/// parallel uploads, not one per file. Times go to stderr for the closing note.
#[test]
fn a_stalled_object_store_ends_the_pass_as_one_outage_whatever_the_batch() {
    let garage = Garage::start();
    let endpoint = garage.endpoint();
    for (when, stall_after) in [("at connect", 0), ("mid-upload", 400_000)] {
        let rig = garage.rig(&format!("stall-{}", stall_after));
        rig.add_minutes(0, 500);
        let relay = crate::relay::Relay::to(endpoint);
        if stall_after == 0 {
            relay.stall();
        } else {
            relay.stall_after(stall_after);
        }
        let (out, took) = through(&rig, &relay, &["run", "--once", "--s3-timeout-secs", "2"]);
        eprintln!(
            "stall {when}: outage after {took:?}, {} hung requests",
            relay.stalled_connections()
        );
        let said = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "stall {when}: {said}");
        let last = said.lines().last().unwrap_or_default();
        assert!(
            last.contains("s3://bronze/stall-") && !last.contains('<'),
            "stall {when}: one line naming the store, no XML: {last}"
        );
        assert!(relay.is_stalled(), "stall {when}: the relay stalled");
        assert!(
            relay.stalled_connections() <= 64,
            "stall {when}: {} requests hung",
            relay.stalled_connections()
        );
        let failed = rig.log().iter().filter(|e| e["kind"] == "failed").count();
        assert_eq!(failed, 0, "stall {when}: an outage records no failed file");
        drop(relay);
        // Back: the next pass settles what may have landed and copies the rest.
        rig.pass(&[], 0);
        assert_eq!(ingested(&rig), 1000);
        rig.audit_clean();
    }
}

/// Issue 25, item 5, at connect: a store that stalls from its first byte costs a pass one
/// request, so one `--s3-timeout-secs`. A first pass over an empty index asks whether Bronze
/// holds files to adopt: that request waited out the timeout, its failure was taken for "no
/// files", and the copies' listings then waited out another (240 s at the default 120 s).
/// Now the first request the store leaves unanswered ends the pass, and any later step of it
/// fails at once. Counted: the connections opened into the stall (2 before: the emptiness
/// check, then the first copy's listing). The time goes to stderr for the record.
#[test]
fn a_store_stalled_at_connect_costs_the_pass_one_request() {
    let garage = Garage::start();
    let rig = garage.rig("stall-first");
    rig.add_minutes(0, 60);
    let relay = crate::relay::Relay::to(garage.endpoint());
    relay.stall();
    let (out, took) = through(&rig, &relay, &["run", "--once", "--s3-timeout-secs", "2"]);
    eprintln!(
        "stall at connect, empty index: outage after {took:?}, {} connections into the stall",
        relay.stalled_connections()
    );
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    let last = said.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("ingest: Bronze s3://bronze/stall-first is not reachable: "),
        "one line naming the store: {last}"
    );
    assert_eq!(relay.stalled_connections(), 1, "one request into the stall");
    assert!(rig.log().iter().all(|e| e["kind"] != "failed"));
    drop(relay);
    assert_eq!(
        rig.pass(&[], 0)["copied"],
        120,
        "the next pass, the store back"
    );
}

/// Issue 25, item 6: a bucket that does not exist (or was deleted) ends the pass as one
/// outage whose line names the store and the S3 error's code and message, never the raw XML
/// error document the server sent.
#[test]
fn a_missing_bucket_is_one_plain_line_without_xml() {
    let garage = Garage::start();
    let mut rig = garage.rig("raw");
    rig.bronze = std::path::PathBuf::from("s3://no-such-bucket/raw");
    rig.add_minutes(0, 3);
    let out = rig.run(&["run", "--once"]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(!said.contains('<'), "no XML: {said}");
    let last = said.lines().last().unwrap_or_default();
    assert!(
        last.contains("s3://no-such-bucket/raw") && last.contains("NoSuchBucket"),
        "{last}"
    );
}

/// Issue 25, item 7: after a batch whose outcome is unknown (the store stalled mid-upload),
/// the next pass settles the journaled files from HEAD requests (the blake3 each upload
/// stores beside its object), concurrently, never downloading one; every file ends in the
/// bucket once and the audit is clean. Once, each landed object was downloaded and hashed,
/// one after another (over five minutes after a flaky store in one run).
#[test]
fn a_batch_left_unknown_is_settled_without_downloading_it() {
    let garage = Garage::start();
    let endpoint = garage.endpoint();
    let rig = garage.rig("settle");
    rig.add_minutes(0, 300);
    let relay = crate::relay::Relay::to(endpoint);
    relay.stall_after(300_000);
    let (out, _) = through(&rig, &relay, &["run", "--once", "--s3-timeout-secs", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    drop(relay);
    let relay = crate::relay::Relay::to(endpoint);
    let (out, took) = through(&rig, &relay, &["run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let requests = relay.take_requests();
    let count = |method: &str, f: &dyn Fn(&String) -> bool| {
        requests
            .iter()
            .filter(|r| r.starts_with(method) && f(r))
            .count()
    };
    // Data objects only: the shipped log's manifest is read at every shipping.
    let downloads = count("GET /", &|r| {
        !r.contains("list-type") && !r.contains("_ingest")
    });
    let heads = count("HEAD /", &|_| true);
    eprintln!("settled in a pass of {took:?}: {heads} HEAD, {downloads} GET of an object");
    assert!(heads > 0, "a batch was left to the journal: {requests:?}");
    assert_eq!(downloads, 0, "settled without downloading");
    assert_eq!(ingested(&rig), 600);
    rig.audit_clean();
}
