//! What is in Bronze, by walking it. Used only where the question is about the folders
//! themselves (adopting an existing tree, finding files the index does not know); the
//! baseline and everything else come from the index, never from here.

use crate::config::StreamMap;
use crate::identity::{FileKey, SourceId};
use crate::naming::{SensorName, WeatherName};
use crate::plan::sensor_rel;
use chrono::Datelike;
use std::fs;
use std::io;
use std::path::Path;

/// One file found under the Bronze root.
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

/// Calls `visit` for every file under `root` (recursively; symlinks are not followed).
pub fn walk(root: &Path, streams: &StreamMap, visit: &mut dyn FnMut(Entry)) -> io::Result<()> {
    if !root.exists() {
        return Ok(());
    }
    walk_dir(root, "", streams, visit)
}

fn walk_dir(
    dir: &Path,
    prefix: &str,
    streams: &StreamMap,
    visit: &mut dyn FnMut(Entry),
) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        // `DirEntry::file_type` does not follow links: a link to a folder is reported, not
        // walked into.
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            visit(Entry::Link { rel });
        } else if kind.is_dir() {
            walk_dir(&entry.path(), &rel, streams, visit)?;
        } else {
            visit(classify(&rel, &name, streams));
        }
    }
    Ok(())
}

/// Decides what a Bronze file is from its path alone.
pub fn classify(rel: &str, name: &str, streams: &StreamMap) -> Entry {
    let rel_owned = rel.to_owned();
    if crate::bronze::is_temp_name(std::ffi::OsStr::new(name)) {
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
        let d = weather.date;
        let want = format!(
            "weather/{:04}/{:02}/{:02}/{name}",
            d.year(),
            d.month(),
            d.day()
        );
        return if want == rel {
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

/// `NAME.kept-<16 hex>`, as written by the Bronze writer when it keeps a previous version.
fn is_kept_aside(name: &str) -> bool {
    name.rsplit_once(".kept-")
        .is_some_and(|(_, hex)| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Number of kept-aside previous versions under `root` (for tests and reports).
pub fn walk_count_kept(root: &Path) -> usize {
    let streams =
        StreamMap::parse(&[crate::config::DEFAULT_STREAMS.into()]).expect("defaults parse");
    let mut n = 0;
    let _ = walk(root, &streams, &mut |e| {
        n += usize::from(matches!(e, Entry::KeptAside { .. }))
    });
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_data_temp_kept_and_strays() {
        let s = StreamMap::parse(&[crate::config::DEFAULT_STREAMS.into()]).unwrap();
        let n = "18.08.2023 1000_JimmyLoup_received.json";
        assert!(matches!(
            classify(&format!("jimmy/2023/08/18/10/{n}"), n, &s),
            Entry::Data { .. }
        ));
        assert!(matches!(
            classify(&format!("jimmy/2023/08/18/11/{n}"), n, &s),
            Entry::Stray { .. }
        ));
        let t = format!(".{n}.ingest-tmp");
        assert!(matches!(
            classify(&format!("jimmy/2023/08/18/10/{t}"), &t, &s),
            Entry::Temp { .. }
        ));
        let k = format!("{n}.kept-0123456789abcdef");
        assert!(matches!(classify(&k, &k, &s), Entry::KeptAside { .. }));
        let w = "Pred_2023-08-18.csv";
        assert!(matches!(
            classify(&format!("weather/2023/08/18/{w}"), w, &s),
            Entry::Data { .. }
        ));
        assert!(matches!(
            classify("jimmy/notes.txt", "notes.txt", &s),
            Entry::Stray { .. }
        ));
    }
}
