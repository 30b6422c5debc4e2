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
