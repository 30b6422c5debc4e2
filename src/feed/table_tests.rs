//! `[[feed]]` tables: a good one reads into the feed it declares, the seed's two written as
//! tables run as the seed's flows, and every bad field is refused naming the feed and field.

use super::*;
use crate::feed::seed::{shape_of, SeedShape};

fn tables(text: &str) -> Vec<FeedTable> {
    #[derive(Deserialize)]
    struct File {
        feed: Vec<FeedTable>,
    }
    toml::from_str::<File>(text).expect("TOML").feed
}

const METER: &str = r#"
[[feed]]
name = "meter"
source = "smb://nas/energy"
pattern = "meter_{stream}_{YYYY}{MM}{DD}T{HH}{mi}.csv"
cadence = "5m"
streams = { A1 = "meter-a1", B2 = "meter-b2" }
check = "csv"
timezone = "Europe/Zurich"
password_file = "/etc/ingest/smb.pw"
"#;

/// The issue's meter feed reads into exactly what it declares, with the default layout by
/// hour, and is not one of the seed's shapes.
#[test]
fn a_five_minute_meter_feed_reads_as_declared() {
    let declared = read_all(&tables(METER)).unwrap();
    let feed = &declared[0].feed;
    assert_eq!(feed.name, "meter");
    assert_eq!(feed.source, FeedSource::Smb("smb://nas/energy".into()));
    assert_eq!(feed.cadence().minutes(), 5);
    assert_eq!(feed.layout, "{alias}/{YYYY}/{MM}/{DD}/{HH}");
    assert_eq!(feed.check, Check::Csv);
    assert_eq!(feed.zone, Some(chrono_tz::Europe::Zurich));
    assert_eq!(
        feed.streams.pairs(),
        [
            ("A1".into(), "meter-a1".into()),
            ("B2".into(), "meter-b2".into())
        ]
    );
    assert_eq!(shape_of(feed), None);
}

/// The seed's two flows written as `[[feed]]` tables are recognised as the seed's shapes
/// (so `run` runs them with the seed's flows), with their own source and streams.
#[test]
fn the_seeds_two_written_as_tables_run_as_the_seeds_flows() {
    let text = r#"
[[feed]]
name = "sensors"
source = 'Z:\'
pattern = "{DD}.{MM}.{YYYY} {HH}{mi}_{stream}_received.json"
cadence = "1m"
streams = { JimmyLoup = "jimmy" }
check = "json"

[[feed]]
name = "weather"
source = "sftp://meteo@127.0.0.1:2222/Meteo2"
pattern = "Pred_{YYYY}-{MM}-{DD}.csv"
cadence = "1d"
alias = "weather"
key_file = "/etc/ingest/id_ed25519"
"#;
    let declared = read_all(&tables(text)).unwrap();
    assert_eq!(shape_of(&declared[0].feed), Some(SeedShape::Sensors));
    assert_eq!(shape_of(&declared[1].feed), Some(SeedShape::Weather));
    assert_eq!(
        declared[1].feed.source,
        FeedSource::Sftp {
            user: "meteo".into(),
            host: "127.0.0.1".into(),
            port: 2222,
            path: "/Meteo2".into()
        }
    );
}

/// Each bad field is exit 2 naming the feed and the field; a password in a URL is refused
/// without being repeated.
#[test]
fn each_bad_field_is_refused_naming_the_feed_and_the_field() {
    let base = |extra: &str, drop: &str| {
        let mut t = tables(METER).remove(0);
        match drop {
            "cadence" => t.cadence = None,
            "streams" => t.streams = None,
            _ => {}
        }
        let patch: FeedTable = toml::from_str(extra).unwrap();
        macro_rules! take {
            ($($f:ident),*) => { $( if patch.$f.is_some() { t.$f = patch.$f; } )* };
        }
        take!(
            name,
            source,
            pattern,
            cadence,
            streams,
            alias,
            layout,
            check,
            timezone,
            silence_minutes,
            key_file
        );
        t
    };
    let cases: &[(&str, &str, &str)] = &[
        ("name = \"Meter!\"", "", "feed `#1`, `name`"),
        ("", "cadence", "feed `meter`, `cadence`: is missing"),
        ("cadence = \"7m\"", "", "feed `meter`, `cadence`"),
        (
            "pattern = \"meter_{stream}_{YYYY}{MM}{DD}.csv\"",
            "",
            "feed `meter`, `pattern`",
        ),
        (
            "pattern = \"meter/{stream}_{YYYY}{MM}{DD}T{HH}{mi}.csv\"",
            "",
            "feed `meter`, `pattern`",
        ),
        ("", "streams", "feed `meter`, `streams`"),
        ("alias = \"x\"", "", "feed `meter`, `streams`"),
        ("streams = { A1 = \"../x\" }", "", "feed `meter`, `streams`"),
        ("layout = \"{YYYY}/{alias}\"", "", "feed `meter`, `layout`"),
        (
            "layout = \"{alias}/../{YYYY}\"",
            "",
            "feed `meter`, `layout`",
        ),
        (
            "layout = \"{alias}/{stream}\"",
            "",
            "feed `meter`, `layout`",
        ),
        ("check = \"xml\"", "", "feed `meter`, `check`"),
        (
            "timezone = \"Mars/Olympus\"",
            "",
            "feed `meter`, `timezone`",
        ),
        ("silence_minutes = 0", "", "feed `meter`, `silence_minutes`"),
        (
            "source = \"sftp://u:hunter2@h/p\"",
            "",
            "feed `meter`, `source`",
        ),
        ("source = \"ftp://h/p\"", "", "feed `meter`, `source`"),
        ("key_file = \"k\"", "", "feed `meter`, `key_file`"),
        (
            "source = \"smb://u:hunter2@h/s\"",
            "",
            "feed `meter`, `source`",
        ),
        (
            "source = \"sftp://u@h\"",
            "",
            "feed `meter`, `source`: name the folder",
        ),
        (
            "streams = { A1 = \"x,B2=y\" }",
            "",
            "feed `meter`, `streams`",
        ),
    ];
    for (extra, drop, named) in cases {
        let e = read_all(&[base(extra, drop)]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(named), "{extra}: {msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        assert_eq!(e.exit_code(), 2);
    }
}

/// Two feeds may not share a name nor a Bronze folder.
#[test]
fn names_and_bronze_folders_are_unique_across_feeds() {
    let twice = format!("{METER}\n{METER}");
    let e = read_all(&tables(&twice)).unwrap_err().to_string();
    assert!(e.contains("feed `meter`, `name`: is declared twice"), "{e}");
    let other = twice.replacen("name = \"meter\"", "name = \"meter2\"", 1);
    let e = read_all(&tables(&other)).unwrap_err().to_string();
    assert!(
        e.contains("alias `meter-a1` is already feed `meter2`'s"),
        "{e}"
    );
}

/// A feed is run by a seed flow only when it is of that flow's shape in every field: the
/// sensors' pattern every 5 minutes, or under another name, is not (and `unlike` says what
/// differs, as `run` reports it); a bad pin is refused when the file is read.
#[test]
fn only_the_seeds_exact_shape_runs_as_a_seed_flow() {
    let sensors = |extra: &str| {
        format!(
            "[[feed]]\nname = \"sensors\"\nsource = \"share\"\n\
             pattern = \"{{DD}}.{{MM}}.{{YYYY}} {{HH}}{{mi}}_{{stream}}_received.json\"\n\
             streams = {{ JimmyLoup = \"jimmy\" }}\n{extra}"
        )
    };
    let feed = |text: &str| read_all(&tables(text)).unwrap().remove(0).feed;
    let seed = feed(&sensors("cadence = \"1m\"\ncheck = \"json\"\n"));
    assert_eq!(shape_of(&seed), Some(SeedShape::Sensors));
    for (extra, differs) in [
        ("cadence = \"5m\"\ncheck = \"json\"\n", "cadence = \"1m\""),
        ("cadence = \"1m\"\n", "check = \"json\""),
    ] {
        let other = feed(&sensors(extra));
        assert_eq!(shape_of(&other), None, "{extra}");
        let why = crate::feed::seed::unlike(&other, SeedShape::Sensors).unwrap();
        assert!(why.contains(differs), "{why}");
    }
    let renamed =
        feed(&sensors("cadence = \"1m\"\ncheck = \"json\"\n").replace("\"sensors\"", "\"plant\""));
    assert_eq!(shape_of(&renamed), None, "another name is another feed");
    let pin = sensors("cadence = \"1m\"\n").replace(
        "source = \"share\"",
        "source = \"sftp://u@h/x\"\nhost_key_sha256 = \"nope\"",
    );
    let e = read_all(&tables(&pin)).unwrap_err().to_string();
    assert!(e.contains("`host_key_sha256`"), "{e}");
}
