//! `ingest config check` against the real servers, tried as a new user would (issue 27): a
//! weather feed declared as a `[[feed]]` table against the real sshd (right, a wrong
//! password, a wrong host key) and Bronze in the real Garage bucket (reached and left as it
//! was, or stopped). Each mistake is one FAIL line naming the feed or Bronze and what failed.

use crate::util::{ingest, text};
use std::path::Path;
use std::process::Output;

/// `ingest --config ingest.toml config check` in `dir` with `env`.
fn config_check(dir: &Path, env: &[(&str, &str)]) -> (Output, String, String) {
    let out = ingest(dir, &["--config", "ingest.toml", "config", "check"], env);
    let (stdout, stderr) = text(&out);
    (out, stdout, stderr)
}

/// The lines of `stdout` that start with `FAIL`.
fn fail_lines(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.starts_with("FAIL")).collect()
}

#[cfg(feature = "sftp")]
mod weather {
    use super::{config_check, fail_lines};
    use crate::sshd::{fingerprint_of, keygen, Sshd, PASSWORD, USER};
    use std::fs;
    use std::path::Path;

    /// The seed's weather feed over this server as a `[[feed]]` table in `dir/ingest.toml`,
    /// logging in with the password `password` (in a file) and trusting the host key by
    /// `trust` (a `known_hosts` or `host_key_sha256` line).
    fn weather_config(dir: &Path, sshd: &Sshd, password: &str, trust: &str) {
        let password_file = dir.join("sftp-password");
        fs::write(&password_file, format!("{password}\n")).unwrap();
        let config = format!(
            "[[feed]]\nname = \"weather\"\n\
             source = \"sftp://{USER}@127.0.0.1:{port}{remote}\"\n\
             pattern = \"Pred_{{YYYY}}-{{MM}}-{{DD}}.csv\"\ncadence = \"1d\"\nalias = \"weather\"\n\
             password_file = {password_file:?}\n{trust}\n",
            port = sshd.port,
            remote = sshd.remote.display(),
            password_file = password_file.display().to_string(),
        );
        fs::write(dir.join("ingest.toml"), config).unwrap();
    }

    fn known_hosts(sshd: &Sshd) -> String {
        format!("known_hosts = {:?}", sshd.known_hosts.display().to_string())
    }

    /// A feed this release does not run yet (hourly observations, not the seed's shape) is
    /// still reached with its own login: the right password is an `ok` line that says the
    /// feed is not run, a wrong one a FAIL line naming the feed (exit 1), never the password.
    #[test]
    fn a_feed_run_by_listing_is_reached_with_its_own_login() {
        let sshd = Sshd::start();
        let dir = tempfile::tempdir().unwrap();
        let hourly = |password: &str| {
            weather_config(dir.path(), &sshd, password, &known_hosts(&sshd));
            let config = dir.path().join("ingest.toml");
            let text = fs::read_to_string(&config).unwrap();
            let text = text
                .replace("name = \"weather\"", "name = \"obs\"")
                .replace("Pred_{YYYY}-{MM}-{DD}.csv", "obs_{YYYY}{MM}{DD}{HH}.csv")
                .replace("cadence = \"1d\"", "cadence = \"1h\"")
                .replace("alias = \"weather\"", "alias = \"obs\"");
            fs::write(&config, text).unwrap();
            config_check(dir.path(), &[])
        };
        let (out, stdout, _) = hourly(PASSWORD);
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        let reached = (stdout.lines()).find(|l| l.contains("feed `obs`: source sftp://"));
        assert!(
            reached.is_some_and(|l| l.starts_with("ok ")
                && l.contains("reached (run by prediction and a nightly listing")),
            "{stdout}"
        );
        let wrong = "not-the-password-43";
        let (out, stdout, stderr) = hourly(wrong);
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        let fail = fail_lines(&stdout);
        assert_eq!(fail.len(), 1, "{stdout}");
        assert!(
            fail[0].contains("feed `obs`") && fail[0].contains("failed"),
            "{stdout}"
        );
        assert!(!format!("{stdout}{stderr}").contains(wrong), "leaked");
    }

    /// Issue 27's daily feed over the real sshd: a daily export (not the seed's forecast
    /// shape) whose 3 August never came is copied into its layout over sFTP, and `gaps` shows
    /// the missing day as one run of 1,440 minutes.
    #[test]
    fn a_daily_feed_over_sftp_with_a_missing_day_shows_the_day_in_gaps() {
        let sshd = Sshd::start();
        let dir = tempfile::tempdir().unwrap();
        weather_config(dir.path(), &sshd, PASSWORD, &known_hosts(&sshd));
        let config = dir.path().join("ingest.toml");
        let text_ = fs::read_to_string(&config).unwrap();
        let text_ = format!("bronze_root = \"bronze\"\nstate = \"ingest.redb\"\n\n{text_}")
            .replace("name = \"weather\"", "name = \"energy\"")
            .replace("Pred_{YYYY}-{MM}-{DD}.csv", "energy_{YYYY}{MM}{DD}.csv")
            .replace("alias = \"weather\"", "alias = \"energy\"");
        fs::write(&config, text_).unwrap();
        let hour = std::time::Duration::from_secs(3600);
        for day in ["02", "04", "05"] {
            sshd.put(&format!("energy_202308{day}.csv"), b"d,kwh\n1,2\n", hour);
        }
        let run = |args: &[&str]| {
            let mut all = vec!["--config", "ingest.toml"];
            all.extend_from_slice(args);
            let out = crate::util::ingest(dir.path(), &all, &[]);
            let (stdout, stderr) = crate::util::text(&out);
            (out.status.code(), stdout, stderr)
        };
        let (code, stdout, stderr) = run(&["run", "--once", "--json"]);
        assert_eq!(code, Some(0), "{stdout}{stderr}");
        let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(report["feeds"]["energy"]["copied"], 3, "{stdout}");
        let copied = dir
            .path()
            .join("bronze/energy/2023/08/04/energy_20230804.csv");
        assert_eq!(fs::read(copied).unwrap(), b"d,kwh\n1,2\n");
        assert!(!format!("{stdout}{stderr}").contains(PASSWORD), "leaked");
        let (code, stdout, stderr) = run(&["gaps", "--json"]);
        assert_eq!(code, Some(1), "{stdout}{stderr}");
        let gaps: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(
            gaps["gaps"],
            serde_json::json!([{"stream": "energy/", "from": "2023-08-03T00:00",
                "to": "2023-08-03T00:00", "minutes": 1440, "kind": "missing"}]),
            "{stdout}"
        );
    }

    /// The right password and the server's known_hosts: every line `ok`, exit 0, and the
    /// feed's line says its source was reached (a login, not just a TCP connect: the wrong
    /// password below fails where this passes).
    #[test]
    fn a_weather_feed_with_the_right_login_and_host_key_is_reached() {
        let sshd = Sshd::start();
        let dir = tempfile::tempdir().unwrap();
        weather_config(dir.path(), &sshd, PASSWORD, &known_hosts(&sshd));
        let (out, stdout, stderr) = config_check(dir.path(), &[]);
        assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
        assert!(stdout.lines().all(|l| l.starts_with("ok ")), "{stdout}");
        let reached = format!(
            "feed `weather`: source sftp://{USER}@127.0.0.1:{}{} reached",
            sshd.port,
            sshd.remote.display()
        );
        assert!(stdout.contains(&reached), "{stdout}");
        assert!(!format!("{stdout}{stderr}").contains(PASSWORD));
    }

    /// A password file holding a wrong password: exactly one FAIL line, naming feed `weather`
    /// and saying the login was refused, exit 1; the wrong password is never printed.
    #[test]
    fn a_wrong_password_is_one_fail_line_naming_the_feed_and_the_login() {
        let sshd = Sshd::start();
        let dir = tempfile::tempdir().unwrap();
        let wrong = "not-the-password-42";
        weather_config(dir.path(), &sshd, wrong, &known_hosts(&sshd));
        let (out, stdout, stderr) = config_check(dir.path(), &[]);
        assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
        let fail = fail_lines(&stdout);
        assert_eq!(fail.len(), 1, "{stdout}");
        assert!(fail[0].contains("feed `weather`"), "{stdout}");
        assert!(
            fail[0].contains(&format!("login as `{USER}` with a password failed")),
            "{stdout}"
        );
        assert!(!format!("{stdout}{stderr}").contains(wrong), "leaked");
    }

    /// `host_key_sha256` pinned to another key's (valid) fingerprint: one FAIL line naming
    /// feed `weather`, the key the server offered and the mismatch with the pin, exit 1.
    #[test]
    fn a_wrong_host_key_is_one_fail_line_naming_the_feed_and_the_mismatch() {
        let sshd = Sshd::start();
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other_key");
        keygen(&other);
        let pin = fingerprint_of(&other.with_extension("pub"));
        assert_ne!(pin, sshd.fingerprint());
        let trust = format!("host_key_sha256 = {pin:?}");
        weather_config(dir.path(), &sshd, PASSWORD, &trust);
        let (out, stdout, stderr) = config_check(dir.path(), &[]);
        assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
        let fail = fail_lines(&stdout);
        assert_eq!(fail.len(), 1, "{stdout}");
        assert!(fail[0].contains("feed `weather`"), "{stdout}");
        assert!(
            fail[0].contains(&format!(
                "offered host key {}, which does NOT match the pinned fingerprint {pin}",
                sshd.fingerprint()
            )),
            "{stdout}"
        );
    }
}

#[cfg(feature = "s3")]
mod bronze {
    use super::{config_check, fail_lines};
    use crate::garage::Garage;
    use std::fs;
    use std::path::Path;
    use std::time::Duration;

    /// The configured `s3_timeout_secs`: small, so an unreachable store is told at once.
    const S3_TIMEOUT: Duration = Duration::from_secs(2);

    /// Bronze in the bucket `bronze` with a small request timeout, and a sensors feed over a
    /// local folder (so the only server is the store), in `dir/ingest.toml`.
    fn bronze_config(dir: &Path) {
        fs::create_dir(dir.join("share")).unwrap();
        let config = format!(
            "bronze_root = \"s3://bronze\"\nstate = \"ingest.redb\"\ns3_timeout_secs = {}\n\n\
             [[feed]]\nname = \"sensors\"\nsource = \"share\"\n\
             pattern = \"{{DD}}.{{MM}}.{{YYYY}} {{HH}}{{mi}}_{{stream}}_received.json\"\n\
             cadence = \"1m\"\nstreams = {{ JimmyLoup = \"jimmy\" }}\ncheck = \"json\"\n",
            S3_TIMEOUT.as_secs()
        );
        fs::write(dir.join("ingest.toml"), config).unwrap();
    }

    fn env(garage: &Garage) -> Vec<(&str, &str)> {
        garage.env.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    /// A reachable bucket: Bronze's line says reached and writable, exit 0, and the bucket
    /// holds exactly what it held before (the probe is staged and discarded, never
    /// published).
    #[test]
    fn a_reachable_bucket_is_reached_and_left_as_it_was() {
        let garage = Garage::start();
        garage.put("jimmy/2023/08/18/10/earlier.json", b"{}");
        let before = garage.keys("");
        let dir = tempfile::tempdir().unwrap();
        bronze_config(dir.path());
        let (out, stdout, stderr) = config_check(dir.path(), &env(&garage));
        assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
        assert!(stdout.lines().all(|l| l.starts_with("ok ")), "{stdout}");
        assert!(
            stdout.contains("Bronze s3://bronze: reached and writable"),
            "{stdout}"
        );
        assert_eq!(garage.keys(""), before, "nothing published");
        assert_eq!(before, ["jimmy/2023/08/18/10/earlier.json"]);
    }

    /// A key that may read the bucket but not write it: one FAIL line naming Bronze and the
    /// refused write, exit 1 (staging alone spools locally, so it cannot tell), and still
    /// nothing in the bucket.
    #[test]
    fn a_bucket_the_key_may_not_write_is_one_fail_line_naming_bronze() {
        let garage = Garage::start();
        garage.read_only();
        let dir = tempfile::tempdir().unwrap();
        bronze_config(dir.path());
        let (out, stdout, stderr) = config_check(dir.path(), &env(&garage));
        assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
        let fail = fail_lines(&stdout);
        assert_eq!(fail.len(), 1, "{stdout}");
        assert!(
            fail[0].starts_with("FAIL  Bronze s3://bronze: writing a probe: "),
            "{stdout}"
        );
        assert!(
            fail[0].ends_with("(may these credentials write to the bucket?)"),
            "what to fix: {stdout}"
        );
        assert!(garage.keys("").is_empty(), "nothing written");
    }

    /// The store stopped: one FAIL line naming Bronze, the address it could not reach and
    /// what to check, exit 1; the client's retries were bounded by the configured
    /// `s3_timeout_secs` (the error says so: counted, not timed).
    #[test]
    fn a_stopped_store_is_one_fail_line_naming_bronze_within_the_timeout() {
        let garage = Garage::start();
        let dir = tempfile::tempdir().unwrap();
        bronze_config(dir.path());
        garage.stop();
        let (out, stdout, stderr) = config_check(dir.path(), &env(&garage));
        assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
        let fail = fail_lines(&stdout);
        assert_eq!(fail.len(), 1, "{stdout}");
        assert!(
            fail[0].starts_with("FAIL  Bronze s3://bronze: reading: "),
            "{stdout}"
        );
        let endpoint = garage.endpoint().to_string();
        assert!(fail[0].contains(&endpoint), "the address tried: {stdout}");
        assert!(
            fail[0].ends_with(
                "(is the store up at that address? are the endpoint and credentials right?)"
            ),
            "what to fix: {stdout}"
        );
        let bound = format!("retry_timeout: {}s", S3_TIMEOUT.as_secs());
        assert!(
            fail[0].contains(&bound),
            "retries bounded by s3_timeout_secs: {stdout}"
        );
    }
}

/// Issue 27's end to end over the real servers: a third feed, a 5-minute CSV meter, read
/// natively over SMB from the real smbd into Bronze in the real Garage bucket.
#[cfg(all(feature = "s3", feature = "smb-native"))]
mod meter {
    use crate::garage::Garage;
    use crate::samba::Samba;
    use crate::smb_native::{PASSWORD, USER};
    use crate::util::{ingest, text};
    use serde_json::Value;
    use std::fs;
    use std::path::Path;

    /// The meter's name and body for `hhmm` on 2023-08-18.
    fn name(hhmm: &str) -> String {
        format!("meter_A1_20230818T{hhmm}.csv")
    }

    fn body(hhmm: &str) -> String {
        format!("t,kwh\n{hhmm},1\n")
    }

    /// Written into the folder the share serves, an hour old (past any minimum age).
    fn write(folder: &Path, hhmm: &str) {
        let path = folder.join(name(hhmm));
        fs::write(&path, body(hhmm)).unwrap();
        let f = fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
            .unwrap();
    }

    /// The meter comes in by prediction (after its first pass lists the share); the share
    /// going down is an outage that records nothing; the files written meanwhile are found
    /// by prediction when it is back, and the slots that never came are the gap `gaps`
    /// reports; an object lost from the bucket is put back by `audit --repair` from the share;
    /// a file that lands late, behind the newest slot, is recovered by `replay --feed`.
    #[test]
    fn a_five_minute_meter_over_native_smb_into_garage_through_an_outage() {
        let garage = Garage::start();
        let rig = garage.rig("feeds");
        let dir = rig.dir.path();
        let meters = dir.join("meters");
        fs::create_dir(&meters).unwrap();
        let mut samba = Samba::serve_as(&meters, Some((USER, PASSWORD)));
        let nightly = crate::util::nightly_hour_far_from_now();
        fs::write(
            dir.join("ingest.toml"),
            format!(
                "bronze_root = \"s3://bronze/feeds\"\nstate = \"ingest.redb\"\n\n[run]\n\
                 nightly_hour = {nightly}\n\n[[feed]]\nname = \"meter\"\n\
                 source = \"smb://{USER}@127.0.0.1:{port}/sensors\"\n\
                 pattern = \"meter_{{stream}}_{{YYYY}}{{MM}}{{DD}}T{{HH}}{{mi}}.csv\"\n\
                 cadence = \"5m\"\nstreams = {{ A1 = \"meter-a1\" }}\ncheck = \"csv\"\n",
                port = samba.port
            ),
        )
        .unwrap();
        let mut env: Vec<(&str, &str)> = (rig.env.iter()).map(|(k, v)| (*k, v.as_str())).collect();
        env.push(("SMB_PASSWORD", PASSWORD));
        let run = |args: &[&str]| {
            let mut all = vec!["--config", "ingest.toml"];
            all.extend_from_slice(args);
            ingest(dir, &all, &env)
        };
        let json = |args: &[&str], code: i32| -> Value {
            let out = run(args);
            let (stdout, stderr) = text(&out);
            assert_eq!(out.status.code(), Some(code), "{args:?}: {stdout}{stderr}");
            serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
        };
        let pass = |code| json(&["run", "--once", "--json"], code)["feeds"]["meter"].clone();
        let key = |hh: &str, hhmm: &str| format!("meter-a1/2023/08/18/{hh}/{}", name(hhmm));

        for hhmm in ["1000", "1005", "1010"] {
            write(&meters, hhmm);
        }
        let first = pass(0);
        assert_eq!(
            (&first["mode"], &first["copied"]),
            (&"listing".into(), &3.into())
        );
        write(&meters, "1015");
        let next = pass(0);
        assert_eq!(
            (&next["mode"], &next["copied"], &next["listings"]),
            (&"prediction".into(), &1.into(), &0.into()),
            "{next}"
        );

        // The outage: the server goes down; the meter goes on writing into its folder, but
        // 10:20 and 10:25 never come.
        samba.stop();
        for hhmm in ["1030", "1035"] {
            write(&meters, hhmm);
        }
        let events = |out: &Value| out["events"].as_u64().unwrap();
        let before = events(&json(&["status", "--json"], 0));
        let out = run(&["run", "--once", "--json"]);
        let (stdout, stderr) = text(&out);
        assert_ne!(out.status.code(), Some(0), "an outage: {stdout}{stderr}");
        assert!(stderr.contains("meter"), "names the feed: {stderr}");
        assert_eq!(
            events(&json(&["status", "--json"], 0)),
            before,
            "nothing recorded"
        );
        samba.start();
        let back = pass(0);
        assert_eq!(
            (&back["mode"], &back["copied"]),
            (&"prediction".into(), &2.into()),
            "10:30 and 10:35 past the two missing slots: {back}"
        );
        assert_eq!(
            garage.data_keys("feeds"),
            ["1000", "1005", "1010", "1015", "1030", "1035"].map(|m| key("10", m)),
        );

        // The slots that never came: one run of two 5-minute slots.
        let gaps = json(&["gaps", "--json"], 1);
        assert_eq!(
            gaps["gaps"],
            serde_json::json!([{"stream": "meter/A1", "from": "2023-08-18T10:20",
                "to": "2023-08-18T10:25", "minutes": 10, "kind": "missing"}]),
            "{gaps}"
        );

        // An object lost from the bucket is copied back from the share.
        garage.delete(&format!("feeds/{}", key("10", "1005")));
        let audit = json(&["audit", "--repair", "--json"], 0);
        assert_eq!(audit["summary"]["repaired"], 1, "{audit}");
        assert_eq!(
            garage.get(&format!("feeds/{}", key("10", "1005"))),
            body("1005").into_bytes()
        );

        // 10:25 lands late, behind the newest slot: prediction does not look back, replay does.
        write(&meters, "1025");
        let replay = json(
            &[
                "replay",
                "--feed",
                "meter",
                "--since",
                "2023-08-18T10:00",
                "--until",
                "2023-08-18T10:40",
                "--json",
            ],
            0,
        );
        assert_eq!(replay["result"]["copied"], 1, "{replay}");
        assert_eq!(
            garage.get(&format!("feeds/{}", key("10", "1025"))),
            body("1025").into_bytes()
        );
        let gaps = json(&["gaps", "--json"], 1);
        assert_eq!(
            gaps["gaps"][0]["minutes"], 5,
            "10:20 alone is missing: {gaps}"
        );
    }
}
