//! The command-line contract: exit codes, one-line errors, configuration precedence.

use crate::util::Rig;
use std::fs;

/// A missing share is "could not run": exit 2 with a one-line cause naming the path.
#[test]
fn missing_share_is_exit_2_with_a_one_line_cause() {
    let rig = Rig::new();
    fs::remove_dir(&rig.share).unwrap();
    let out = rig.run(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("not reachable") && err.contains("share"),
        "{err}"
    );
    assert!(
        err.contains(rig.share.to_str().unwrap()),
        "names the path: {err}"
    );
}

/// While another process holds the store, a command waits briefly, then exits 2 and names
/// the lock instead of panicking.
#[test]
fn a_store_held_by_another_process_is_exit_2_naming_the_lock() {
    let rig = Rig::new();
    let _held = ingest::store::Store::open(&rig.state, std::time::Duration::ZERO).unwrap();
    let out = rig.run(&["status", "--store-wait-secs", "0.2"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("locked") && err.contains("ingest.redb"),
        "{err}"
    );
}

/// A store file full of garbage is a clear error (exit 2), not a panic.
#[test]
fn a_garbage_store_is_exit_2_not_a_panic() {
    let rig = Rig::new();
    fs::write(&rig.state, vec![0xA5; 4096]).unwrap();
    let out = rig.run(&["run", "--once"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot be opened") && !err.contains("panicked"),
        "{err}"
    );
}

/// `status` on a store that does not exist says so, instead of creating one.
#[test]
fn status_without_a_store_is_exit_2_and_creates_nothing() {
    let rig = Rig::new();
    let out = rig.run(&["status"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let named = format!("no store at {}", rig.state.display());
    assert!(err.contains(&named), "{err}");
    assert!(!rig.state.exists());
}

/// Flags win over environment variables, which win over the config file.
#[test]
fn flags_win_over_env_which_wins_over_the_config_file() {
    let rig = Rig::new();
    rig.add_minutes(0, 1);
    let d = rig.dir.path();
    let config = d.join("ingest.toml");
    let toml =
        format!(
        "smb_path = {:?}\nbronze_root = {:?}\nstate = {:?}\nstreams = [\"JimmyLoup=fromfile\"]\n",
        rig.share, d.join("b-file"), d.join("s-file.redb")
    );
    fs::write(&config, toml).unwrap();
    let bin = env!("CARGO_BIN_EXE_ingest");
    let run = |env_bronze: Option<&str>, flag_bronze: Option<&str>| {
        let mut c = std::process::Command::new(bin);
        c.args(["run", "--once"]).env("INGEST_CONFIG", &config);
        for v in ["SMB_PATH", "BRONZE_ROOT", "INGEST_STATE", "INGEST_STREAMS"] {
            c.env_remove(v);
        }
        if let Some(b) = env_bronze {
            c.env("BRONZE_ROOT", d.join(b));
        }
        if let Some(b) = flag_bronze {
            c.arg("--bronze-root").arg(d.join(b));
        }
        c.arg("--state").arg(d.join(format!(
            "{}.redb",
            flag_bronze.or(env_bronze).unwrap_or("file")
        )));
        let out = crate::util::output_of(&mut c);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let copied = |root: &str| {
        d.join(root)
            .join("fromfile/2023/08/18/10/18.08.2023 1000_JimmyLoup_received.json")
            .is_file()
    };
    run(None, None);
    assert!(copied("b-file"), "config file value used");
    run(Some("b-env"), None);
    assert!(copied("b-env"), "env beats file");
    run(Some("b-env2"), Some("b-flag"));
    assert!(copied("b-flag") && !copied("b-env2"), "flag beats env");
}

/// A config file with an unknown key, or a bad stream alias, is refused with exit 2 and a
/// message naming the bad input.
#[test]
fn bad_configuration_is_exit_2_naming_the_bad_input() {
    let rig = Rig::new();
    let config = rig.dir.path().join("bad.toml");
    fs::write(&config, "smb_pth = \"/x\"\n").unwrap();
    let out = rig.run(&["run", "--once", "--config", config.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("smb_pth"), "{err}");
    let out = rig.run(&["run", "--once", "--stream", "JimmyLoup=../etc"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("alias `../etc` must be lower-case letters"),
        "the cause is the alias: {err}"
    );
    assert!(!rig.state.exists(), "refused before the store is created");
}

/// Global options are accepted before the subcommand as well as after it.
#[test]
fn global_options_work_before_the_subcommand() {
    let rig = Rig::new();
    rig.add_minutes(0, 1);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ingest"))
        .arg("--smb-path")
        .arg(&rig.share)
        .arg("--bronze-root")
        .arg(&rig.bronze)
        .arg("--state")
        .arg(&rig.state)
        .args(["run", "--once"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(rig.status()["streams"][1]["files"], 1);
}

/// `run` with neither a share nor a weather server configured is exit 2 saying so, and names
/// every way to set each, the config file's keys included (a service has only its file).
#[test]
fn run_with_nothing_configured_names_every_way_to_configure_it() {
    let rig = Rig::new();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ingest"))
        .args(["run", "--once", "--bronze-root"])
        .arg(&rig.bronze)
        .arg("--state")
        .arg(&rig.state)
        .env_remove("SMB_PATH")
        .env_remove("SFTP_HOST")
        .env_remove("INGEST_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for way in [
        "--smb-path",
        "SMB_PATH",
        "smb_path in the config file",
        "--sftp-host",
        "SFTP_HOST",
        "sftp_host in the config file",
        "a [[feed]] there",
    ] {
        assert!(err.contains(way), "names {way}: {err}");
    }
    assert!(!rig.state.exists(), "refused before the store is created");
}

/// Malformed `--since` values (for `audit` and `replay`) and malformed config files are usage
/// errors: exit 2, a message that names the bad input, never a panic, nothing written.
#[test]
fn malformed_since_values_and_config_files_are_exit_2_with_the_cause() {
    let rig = Rig::new();
    rig.add_minutes(0, 2);
    rig.pass(&[], 0);
    let events = rig.log().len();
    let long = "9".repeat(5000);
    for since in [
        "",
        "yesterday",
        "2023-13-01",
        "2023-02-30",
        "2023-01-01T25:00",
        "2023-01-01T10:00+99:00",
        "99999999-01-01",
        "-1",
        "2023-01-01T10:00:00Z junk",
        long.as_str(),
    ] {
        for cmd in ["audit", "replay"] {
            let out = rig.run(&[cmd, &format!("--since={since}")]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{cmd} --since {since:?}: {err}");
            assert!(err.contains("since") && !err.contains("panicked"), "{err}");
        }
    }
    for (i, text) in [
        "smb_path = ",
        "[[[",
        "batch_size = -4",
        "batch_size = \"many\"",
        "\u{0}\u{1}\u{2}",
        "streams = 7",
    ]
    .iter()
    .enumerate()
    {
        let config = rig.dir.path().join(format!("bad{i}.toml"));
        fs::write(&config, text).unwrap();
        let out = rig.run(&["run", "--once", "--config", config.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text:?}: {err}");
        assert!(
            err.contains(config.to_str().unwrap()) && !err.contains("panicked"),
            "names the file: {err}"
        );
    }
    assert_eq!(rig.log().len(), events, "nothing recorded");
}

/// `ingest service` manages a Windows service; elsewhere it refuses with exit 2 and points at
/// systemd, and options a service could not run with are refused first, naming them.
#[cfg(not(windows))]
#[test]
fn service_commands_outside_windows_are_exit_2_naming_the_alternative() {
    let rig = Rig::new();
    let out = rig.run(&["service", "install", "--", "--interval-secs", "30"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Windows service") && err.contains("systemd"),
        "{err}"
    );
    let out = rig.run(&["service", "install", "--", "--once"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--once"), "{err}");
}

/// Where a key README "Configuration" lists goes in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Top,
    Run,
    Feed,
}

/// The keys README "Configuration" says the config file takes (the backquoted snake_case
/// words of its first paragraph), each with its table (named before its keys).
fn readme_config_keys() -> Vec<(String, Table)> {
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme.split("\n## Configuration\n").nth(1).unwrap();
    let paragraph = section
        .split("\n\n")
        .find(|p| !p.trim().is_empty())
        .unwrap();
    let mut table = Table::Top;
    let mut keys = Vec::new();
    for word in paragraph.split('`').skip(1).step_by(2) {
        match word {
            "[run]" => table = Table::Run,
            "[[feed]]" => table = Table::Feed,
            _ => {}
        }
        if (word.chars()).all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            keys.push((word.to_owned(), table));
        }
    }
    assert!(keys.len() > 40, "README lists the keys: {keys:?}");
    for t in [Table::Run, Table::Feed] {
        assert!(keys.iter().any(|(_, k)| *k == t), "and the {t:?} table's");
    }
    keys
}

/// `--help` for `--config` names every key the config file takes (it once named four of
/// fourteen), and a file with all of them, as README lists them, is accepted.
#[test]
fn config_help_names_every_key_the_file_takes() {
    let keys = readme_config_keys();
    let out = crate::util::output_of(
        std::process::Command::new(env!("CARGO_BIN_EXE_ingest")).arg("--help"),
    );
    let help = String::from_utf8_lossy(&out.stdout);
    let after = help.split("--config <CONFIG>").nth(1).unwrap();
    let entry: String = (after.lines())
        .take_while(|line| !line.trim_start().starts_with('-'))
        .collect::<Vec<_>>()
        .join("\n");
    for (key, _) in &keys {
        assert!(
            entry.contains(key.as_str()),
            "--config help names {key}:{entry}"
        );
    }
    let rig = Rig::new();
    let config = rig.dir.path().join("all.toml");
    let path = |key: &str| format!("{:?}", rig.dir.path().join(key));
    let value = |key: &str| match key {
        "sftp_port" => "2222".to_owned(),
        "streams" => "[\"JimmyLoup=jimmy\"]".to_owned(),
        "sftp_host_key_sha256" => format!("\"SHA256:{}\"", "A".repeat(43)),
        "metrics_addr" => "\"127.0.0.1:0\"".to_owned(),
        "on_new" => "\"true\"".to_owned(),
        "nightly_hour" => "3".to_owned(),
        k if k.ends_with("_secs") => "7".to_owned(),
        k if ["_minutes", "_threads", "_size", "_retries"]
            .iter()
            .any(|s| k.ends_with(s)) =>
        {
            "5".to_owned()
        }
        _ => path(key),
    };
    // A feed's keys are valid together only for some sources: every key but `alias` in an
    // sFTP feed with {stream}, `alias` in a second feed without it.
    let feed_value = |key: &str| match key {
        "name" => "\"meter\"".to_owned(),
        "source" => "\"sftp://u@127.0.0.1:2222/x\"".to_owned(),
        "pattern" => "\"meter_{stream}_{YYYY}{MM}{DD}T{HH}{mi}.csv\"".to_owned(),
        "cadence" => "\"5m\"".to_owned(),
        "streams" => "{ A1 = \"a1\" }".to_owned(),
        "layout" => "\"{alias}/{YYYY}/{MM}\"".to_owned(),
        "check" => "\"csv\"".to_owned(),
        "timezone" => "\"Europe/Zurich\"".to_owned(),
        "silence_minutes" => "30".to_owned(),
        "host_key_sha256" => format!("\"SHA256:{}\"", "A".repeat(43)),
        _ => path(key),
    };
    let mut text = String::new();
    for (table, header) in [
        (Table::Top, ""),
        (Table::Run, "[run]\n"),
        (Table::Feed, "[[feed]]\n"),
    ] {
        text.push_str(header);
        for (k, _) in keys.iter().filter(|(k, t)| *t == table && k != "alias") {
            let v = if table == Table::Feed {
                feed_value(k)
            } else {
                value(k)
            };
            text.push_str(&format!("{k} = {v}\n"));
        }
    }
    assert!(keys.iter().any(|(k, t)| k == "alias" && *t == Table::Feed));
    text.push_str(&format!(
        "[[feed]]\nname = \"daily\"\nsource = {}\npattern = \"d_{{YYYY}}{{MM}}{{DD}}.csv\"\n\
         cadence = \"1d\"\nalias = \"daily\"\n",
        path("daily")
    ));
    fs::write(&config, text).unwrap();
    let out = rig.run(&["status", "--config", config.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no store at"), "every key accepted: {err}");
}

/// Errors about an incomplete weather server name where its host was set: a host from the
/// config file names `sftp_host` and the file (they once said "SFTP_HOST is set", which the
/// user never set), a host from a flag names the flag, and each names every way to set what
/// is missing, the config key included.
#[cfg(feature = "sftp")]
#[test]
fn sftp_errors_name_the_config_key_when_the_host_came_from_the_file() {
    let rig = Rig::new();
    let config = rig.dir.path().join("weather.toml");
    let path = config.to_str().unwrap();
    let pw = rig.dir.path().join("pw");
    fs::write(&pw, "x").unwrap();
    let cases = [
        (
            "sftp_host = \"127.0.0.1\"\n".to_owned(),
            "sftp_user in the config file",
        ),
        (
            "sftp_host = \"127.0.0.1\"\nsftp_user = \"u\"\n".to_owned(),
            "sftp_key_file",
        ),
        (
            format!(
                "sftp_host = \"127.0.0.1\"\nsftp_user = \"u\"\nsftp_password_file = {pw:?}\n\
                 sftp_host_key_sha256 = \"nope\"\n"
            ),
            "sftp_host_key_sha256 in",
        ),
    ];
    for (text, missing) in cases {
        fs::write(&config, &text).unwrap();
        let out = rig.run(&["run", "--once", "--config", path]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        assert!(err.contains(missing), "{text}: names {missing}: {err}");
        assert!(err.contains(path), "{text}: names the file: {err}");
        assert!(!err.contains("SFTP_HOST is set"), "{text}: {err}");
        if !missing.starts_with("sftp_host_key") {
            assert!(err.contains("sftp_host in"), "{text}: names the key: {err}");
        }
    }
    let out = rig.run(&["run", "--once", "--sftp-host", "127.0.0.1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--sftp-host (SFTP_HOST) is set but"), "{err}");
    assert!(err.contains("--sftp-user, SFTP_USER or sftp_user"), "{err}");
}

/// `ingest --version` names the release, the commit it was built from (the checkout's HEAD,
/// when built from one) and that commit's date, so a bug report says exactly what ran.
#[test]
fn version_names_the_release_the_commit_and_its_date() {
    let out = crate::util::output_of(
        std::process::Command::new(env!("CARGO_BIN_EXE_ingest")).arg("--version"),
    );
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let rest = line
        .strip_prefix(&format!("ingest {} (commit ", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{line}"));
    let (commit, date) = rest.trim_end_matches(')').split_once(", ").unwrap();
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let hex = commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit());
    assert!(hex || commit == "unknown", "{line}");
    // Where git runs (not under Wine), the commit is the checkout's.
    if let Some(head) = head {
        assert_eq!(commit, head, "{line}");
    }
    let digits = |s: &str| s.len() > 1 && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = date.split('-').collect();
    assert!(
        date == "unknown" || (parts.len() == 3 && parts.iter().all(|p| digits(p))),
        "{line}"
    );
}

/// `ingest man --dir` writes a page for the binary and one per subcommand, each naming its
/// command; `ingest man` prints the top page; `ingest completions` prints a script per shell
/// that names the subcommands, and an unknown shell is exit 2 listing the known ones. What
/// the packages install (tools/release) comes from here.
#[test]
fn man_pages_and_completions_cover_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::util::ingest(dir.path(), &["man", "--dir", "pages"], &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}", crate::util::text(&out));
    for page in [
        "ingest",
        "ingest-run",
        "ingest-gaps",
        "ingest-config-check",
        "ingest-man",
    ] {
        let text = fs::read_to_string(dir.path().join(format!("pages/{page}.1")))
            .unwrap_or_else(|e| panic!("no page {page}.1: {e}"));
        assert!(text.contains(".TH"), "{page}.1 is not a manual page");
    }
    let top = crate::util::ingest(dir.path(), &["man"], &[]);
    let (page, _) = crate::util::text(&top);
    assert!(
        page.contains(".SH SUBCOMMANDS") && page.contains("ingest\\-run(1)"),
        "{page}"
    );
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = crate::util::ingest(dir.path(), &["completions", shell], &[]);
        let (script, _) = crate::util::text(&out);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        assert!(
            script.contains("config") && script.contains("replay"),
            "{shell}: {script}"
        );
    }
    let out = crate::util::ingest(dir.path(), &["completions", "cmd"], &[]);
    let (_, err) = crate::util::text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("bash") && err.contains("powershell"), "{err}");
}

/// `ingest config init` writes the annotated example (which `config check` accepts: the
/// examples test) where there is no file, leaves an existing file exactly as it is — the
/// Windows installer runs it on every install and upgrade, so an edited config must survive —
/// and needs no configuration to run, even with INGEST_CONFIG naming the file it is to
/// write. A folder that is not there is exit 2 naming the path.
#[test]
fn config_init_writes_the_example_once_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let example =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/ingest.toml")).unwrap();
    // Windows gets CRLF line ends, for Notepad.
    let example = if cfg!(windows) {
        example.replace('\n', "\r\n")
    } else {
        example
    };
    let env = [("INGEST_CONFIG", "ingest.toml")];
    let out = crate::util::ingest(dir.path(), &["config", "init"], &env);
    let (stdout, stderr) = crate::util::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.starts_with("wrote ingest.toml"), "{stdout}");
    let path = dir.path().join("ingest.toml");
    assert_eq!(fs::read_to_string(&path).unwrap(), example);

    fs::write(&path, "# edited\n").unwrap();
    let out = crate::util::ingest(dir.path(), &["config", "init", "ingest.toml"], &[]);
    let (stdout, _) = crate::util::text(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.contains("exists: left as it is"), "{stdout}");
    assert_eq!(fs::read_to_string(&path).unwrap(), "# edited\n");

    let out = crate::util::ingest(dir.path(), &["config", "init", "no/such/dir.toml"], &[]);
    let (_, stderr) = crate::util::text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("no/such/dir.toml"), "{stderr}");
}
