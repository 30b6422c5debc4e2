//! Where things go in Bronze: the one place that knows the folder layout (a sensor file by
//! stream/year/month/day/hour, a forecast by year/month/day), the temp and kept-aside names,
//! and how a path found in Bronze is told apart (data, temp, kept aside, stray, link).
//! Every Bronze implementation and every reader of Bronze paths goes through these rules.

use crate::config::StreamMap;
use crate::identity::{ContentHash, FileKey, SourceId};
use crate::naming::{SensorName, WeatherName};
use chrono::{Datelike, Timelike};

/// The top folder of ingest's own files in Bronze (the shipped log, `shipping`): never data,
/// never a stray, never seen by audit, adopt or a reader of `{alias}/**`. No stream's alias
/// may take the name (`config`).
pub const RESERVED: &str = "_ingest";

/// Suffix of a staged copy's temp name (`.NAME.ingest-tmp`, beside its destination).
const TEMP_SUFFIX: &str = ".ingest-tmp";

/// `{alias}/YYYY/MM/DD/HH/{name}`, the seed's layout.
pub fn sensor_rel(alias: &str, name: &SensorName) -> String {
    let m = name.minute;
    format!(
        "{alias}/{:04}/{:02}/{:02}/{:02}/{name}",
        m.year(),
        m.month(),
        m.day(),
        m.hour()
    )
}

/// `weather/YYYY/MM/DD/Pred_YYYY-MM-DD.csv`, the seed's layout.
pub fn weather_rel(name: &WeatherName) -> String {
    let d = name.date;
    format!(
        "weather/{:04}/{:02}/{:02}/{name}",
        d.year(),
        d.month(),
        d.day()
    )
}

/// The temp name a copy to `rel` is staged under, beside it. Temp files are dot-prefixed:
/// the name grammar rejects them, so they are never mistaken for data. One writer per store
/// means a fixed name per destination is safe.
pub fn temp_rel(rel: &str) -> String {
    let (dir, name) = split(rel);
    format!("{dir}.{name}{TEMP_SUFFIX}")
}

/// Where the previous bytes at `rel` are kept when different bytes replace them.
pub fn kept_rel(rel: &str, replaced: ContentHash) -> String {
    format!("{rel}.kept-{}", &replaced.to_hex()[..16])
}

/// Whether a Bronze path is [`RESERVED`] or below it.
pub fn is_reserved(rel: &str) -> bool {
    rel.strip_prefix(RESERVED)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Refuses a reserved path that is not a plain path below [`RESERVED`] (empty, `.` or `..`
/// parts, a backslash): these paths are built by `shipping`, so a refusal is a bug there.
pub fn check_reserved(rel: &str) -> std::io::Result<()> {
    let plain = rel
        .strip_prefix(RESERVED)
        .and_then(|r| r.strip_prefix('/'))
        .is_some_and(|r| {
            r.split('/')
                .all(|part| !part.is_empty() && part != "." && part != ".." && !part.contains('\\'))
        });
    if plain {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{rel}` is not a path below Bronze's {RESERVED}/ folder"),
        ))
    }
}

/// Whether a Bronze file name is one of our temp files (for cleanup and reports).
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(TEMP_SUFFIX)
}

/// `NAME.kept-<16 hex>`, as written when a previous version is kept aside (a rule of names,
/// so it lives with them: feed patterns refuse to match it).
pub use crate::naming::is_kept_aside;

/// The folder part (with its trailing `/`, or empty) and the file name of a Bronze path.
pub fn split(rel: &str) -> (&str, &str) {
    match rel.rfind('/') {
        Some(i) => rel.split_at(i + 1),
        None => ("", rel),
    }
}

/// The last part of a Bronze path.
pub fn file_name(rel: &str) -> &str {
    split(rel).1
}

/// The Bronze folder of a configured stream's files (its alias, or the apartment itself).
pub fn stream_dir<'a>(stream: &'a str, streams: &'a StreamMap) -> &'a str {
    streams.alias(stream).unwrap_or(stream)
}

/// One file found under the Bronze root, as the layout sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A data file exactly where its name says it belongs.
    Data { key: FileKey, rel: String },
    /// One of our temp files (left by a crash; harmless, re-staged on the next copy).
    Temp { rel: String },
    /// A previous version kept aside by a copy (`NAME.kept-HASH`).
    KeptAside { rel: String },
    /// Anything else: a name that does not parse, or a file in the wrong folder.
    Stray { rel: String, why: &'static str },
    /// A symbolic link (or Windows junction), to a file or a folder: never followed, never
    /// data, whatever its name.
    Link { rel: String },
}

impl Entry {
    pub fn rel(&self) -> &str {
        match self {
            Entry::Data { rel, .. }
            | Entry::Temp { rel }
            | Entry::KeptAside { rel }
            | Entry::Stray { rel, .. }
            | Entry::Link { rel } => rel,
        }
    }
}

/// Decides what a Bronze file is from its path alone.
pub fn classify(rel: &str, streams: &StreamMap) -> Entry {
    let name = file_name(rel);
    let rel_owned = rel.to_owned();
    if is_temp_name(name) {
        return Entry::Temp { rel: rel_owned };
    }
    if is_kept_aside(name) {
        return Entry::KeptAside { rel: rel_owned };
    }
    if let Ok(sensor) = SensorName::parse(name) {
        return match streams.alias(&sensor.apartment) {
            Some(alias) if sensor_rel(alias, &sensor) == rel => Entry::Data {
                key: FileKey::share(name.as_bytes()),
                rel: rel_owned,
            },
            Some(_) => Entry::Stray {
                rel: rel_owned,
                why: "not in the folder its name says",
            },
            None => Entry::Stray {
                rel: rel_owned,
                why: "apartment not configured",
            },
        };
    }
    if let Ok(weather) = WeatherName::parse(name) {
        return if weather_rel(&weather) == rel {
            let key = FileKey {
                source: SourceId::Weather,
                name: name.as_bytes().to_vec(),
            };
            Entry::Data {
                key,
                rel: rel_owned,
            }
        } else {
            Entry::Stray {
                rel: rel_owned,
                why: "not in the folder its name says",
            }
        };
    }
    Entry::Stray {
        rel: rel_owned,
        why: "name does not parse",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_data_temp_kept_and_strays() {
        let s = StreamMap::parse(&[crate::config::DEFAULT_STREAMS.into()]).unwrap();
        let n = "18.08.2023 1000_JimmyLoup_received.json";
        assert!(matches!(
            classify(&format!("jimmy/2023/08/18/10/{n}"), &s),
            Entry::Data { .. }
        ));
        assert!(matches!(
            classify(&format!("jimmy/2023/08/18/11/{n}"), &s),
            Entry::Stray { .. }
        ));
        let t = temp_rel(&format!("jimmy/2023/08/18/10/{n}"));
        assert_eq!(t, format!("jimmy/2023/08/18/10/.{n}.ingest-tmp"));
        assert!(matches!(classify(&t, &s), Entry::Temp { .. }));
        let k = format!("{n}.kept-0123456789abcdef");
        assert!(matches!(classify(&k, &s), Entry::KeptAside { .. }));
        let w = "Pred_2023-08-18.csv";
        assert!(matches!(
            classify(&format!("weather/2023/08/18/{w}"), &s),
            Entry::Data { .. }
        ));
        assert!(matches!(
            classify("jimmy/notes.txt", &s),
            Entry::Stray { .. }
        ));
    }
}
