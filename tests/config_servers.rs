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
