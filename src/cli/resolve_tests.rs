//! The config file's keys, as README "Configuration" lists them (and `--config`'s help after
//! it, tests/cli.rs), are exactly `FileConfig`'s fields: a key added to one and not the other
//! fails here, before a user finds a documented key refused or an accepted one undocumented.

use super::FileConfig;

/// The backquoted snake_case words of the paragraph that opens README "Configuration": the
/// top-level keys, then (after `[run]`) the `[run]` table's, then (after `[[feed]]`) a feed's.
fn readme_config_keys() -> (Vec<String>, Vec<String>, Vec<String>) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme.split("\n## Configuration\n").nth(1).unwrap();
    let paragraph = section
        .split("\n\n")
        .find(|p| !p.trim().is_empty())
        .unwrap();
    let (top, rest) = paragraph
        .split_once("`[run]`")
        .expect("README names the [run] table");
    let (run, feed) = rest.split_once("`[[feed]]`").expect("and [[feed]] tables");
    let keys = |text: &str| -> Vec<String> {
        (text.split('`').skip(1).step_by(2))
            .filter(|w| {
                w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            })
            .map(str::to_owned)
            .collect()
    };
    (keys(top), keys(run), keys(feed))
}

#[test]
fn readme_lists_exactly_the_keys_the_config_file_takes() {
    let (top, run, feed) = readme_config_keys();
    // Values of the right type only: this checks the keys, not the values.
    let value = |key: &str, in_feed: bool| match key {
        "streams" if in_feed => "{ A = \"a\" }",
        "streams" => "[\"JimmyLoup=jimmy\"]",
        "metrics_addr" => "\"127.0.0.1:0\"",
        k if k.ends_with("_secs") || k.ends_with("_minutes") || k.ends_with("_hour") => "22",
        "copy_threads" | "batch_size" | "sftp_retries" | "sftp_port" => "22",
        _ => "\"x\"",
    };
    let lines = |keys: &[String], in_feed: bool| -> String {
        keys.iter()
            .map(|k| format!("{k} = {}\n", value(k, in_feed)))
            .collect()
    };
    let text = format!(
        "{}[run]\n{}[[feed]]\n{}",
        lines(&top, false),
        lines(&run, false),
        lines(&feed, true)
    );
    // Unknown fields are refused: every key README lists is one the file takes.
    let file: FileConfig = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    // And every field is set: the file takes no key README leaves out.
    let fields = format!("{file:?}");
    assert!(
        !fields.contains("None"),
        "a key README does not list: {fields}"
    );
}

/// `ingest ARGS` with `config` written to a temp file and passed as `--config`, resolved, and
/// its `run` options layered.
fn run_options(config: &str, args: &[&str]) -> crate::Result<super::super::run::RunArgs> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ingest.toml");
    std::fs::write(&file, config).unwrap();
    let argv = ["ingest", "--config", file.to_str().unwrap(), "run"]
        .into_iter()
        .chain(args.iter().copied());
    let cli = crate::cli::Cli::from_argv(argv).expect("the arguments parse");
    let crate::cli::Command::Run(run) = &cli.command else {
        unreachable!()
    };
    cli.global.resolve()?.run_args(run)
}

/// One file holds the daemon's settings: the `[run]` table replaces defaults, and a flag
/// still wins over it (flags > environment > file > defaults).
#[test]
fn the_run_table_replaces_defaults_and_a_flag_wins_over_it() {
    let file = "[run]\ninterval_secs = 7.5\nnightly_hour = 3\nsilence_minutes = 90\n\
                metrics_addr = \"127.0.0.1:9464\"\non_new = \"notify.cmd\"\nbatch_size = 50\n";
    let run = run_options(file, &[]).unwrap();
    assert_eq!(run.interval_secs, 7.5);
    assert_eq!(run.nightly_hour, 3);
    assert_eq!(run.silence_minutes, 90);
    assert_eq!(run.metrics_addr, Some("127.0.0.1:9464".parse().unwrap()));
    assert_eq!(run.on_new.as_deref(), Some("notify.cmd"));
    assert_eq!(run.batch_size, 50);
    let run = run_options(file, &["--interval-secs", "60", "--nightly-hour", "0"]).unwrap();
    assert_eq!(
        run.interval_secs, 60.0,
        "a flag equal to the default still wins"
    );
    assert_eq!(run.nightly_hour, 0);
    assert_eq!(run.silence_minutes, 90);
}

/// A value clap would refuse as a flag is refused from the file too, naming the key.
#[test]
fn an_out_of_range_run_value_is_exit_2_naming_the_key() {
    for (file, key) in [
        ("[run]\nnightly_hour = 24\n", "nightly_hour"),
        ("[run]\nsilence_minutes = 0\n", "silence_minutes"),
    ] {
        match run_options(file, &[]) {
            Err(e @ crate::Error::Config(_)) => {
                assert!(e.to_string().contains(key), "{e}");
                assert_eq!(e.exit_code(), 2);
            }
            other => panic!("{file}: {other:?}"),
        }
    }
}

/// A secret is never inline in the file: the key is refused by name, its value never echoed,
/// at the top level and inside tables.
#[test]
fn an_inline_secret_is_refused_by_key_without_its_value() {
    for (file, key) in [
        ("sftp_password = \"hunter2\"\n", "sftp_password"),
        ("smb_password = \"hunter2\"\n", "smb_password"),
        ("[run]\npassword = \"hunter2\"\n", "run.password"),
        (
            "[[feed]]\nname = \"x\"\naws_secret_access_key = \"hunter2\"\n",
            "feed.aws_secret_access_key",
        ),
    ] {
        let e = run_options(file, &[]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(&format!("`{key}`")), "{msg}");
        assert!(!msg.contains("hunter2"), "the secret was echoed: {msg}");
        assert_eq!(e.exit_code(), 2);
    }
}

/// A value of the wrong type is named by its line and key, never quoted: the line may hold
/// a misspelt secret.
#[test]
fn a_bad_value_is_named_by_line_and_key_without_the_value() {
    let e = run_options(
        "state = \"s.redb\"\n[run]\nnightly_hour = \"hunter2\"\n",
        &[],
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("line 3, `nightly_hour`"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
    assert_eq!(e.exit_code(), 2);
}

/// A seed-shaped feed's `silence_minutes` is never silently dropped: the sensors' becomes the
/// daemon's threshold (a different one in [run] is refused), the weather's is refused.
#[test]
fn a_feeds_silence_is_applied_or_refused_never_dropped() {
    let sensors = "[[feed]]\nname = \"sensors\"\nsource = \"share\"\n\
                   pattern = \"{DD}.{MM}.{YYYY} {HH}{mi}_{stream}_received.json\"\n\
                   cadence = \"1m\"\nstreams = { JimmyLoup = \"jimmy\" }\ncheck = \"json\"\n\
                   silence_minutes = 42\n";
    assert_eq!(run_options(sensors, &[]).unwrap().silence_minutes, 42);
    let both = format!("[run]\nsilence_minutes = 7\n{sensors}");
    let e = run_options(&both, &[]).unwrap_err().to_string();
    assert!(
        e.contains("feed `sensors` sets silence_minutes and [run] another"),
        "{e}"
    );
    let weather = "[[feed]]\nname = \"weather\"\nsource = \"sftp://u@127.0.0.1/x\"\n\
                   pattern = \"Pred_{YYYY}-{MM}-{DD}.csv\"\ncadence = \"1d\"\nalias = \"weather\"\n\
                   password_file = \"pw\"\nknown_hosts = \"kh\"\nsilence_minutes = 3000\n";
    let e = run_options(weather, &[]).unwrap_err().to_string();
    assert!(e.contains("feed `weather`, `silence_minutes`"), "{e}");
}

/// A config file as Windows tools save it is read: UTF-8 with a byte-order mark (Notepad),
/// UTF-16 LE with its mark (PowerShell 5's `>`); other bytes are exit 2 saying to save as UTF-8.
#[test]
fn a_config_file_saved_by_windows_tools_is_read() {
    let text = "[run]\nnightly_hour = 4\n";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ingest.toml");
    let bom_utf8 = [&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat();
    let utf16le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let utf16be: Vec<u8> = [0xFE, 0xFF]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
        .collect();
    for bytes in [bom_utf8, utf16le, utf16be] {
        std::fs::write(&file, &bytes).unwrap();
        let config = super::read_config(&file).unwrap();
        assert_eq!(config.run.unwrap().nightly_hour, Some(4));
    }
    std::fs::write(&file, [b'a', 0xFF, b'\n']).unwrap();
    let e = super::read_config(&file).unwrap_err().to_string();
    assert!(e.contains("save it as UTF-8"), "{e}");
}
