//! Deciding, as values, what to do with a name found on the share. Nothing here touches a file:
//! [`classify`] turns a name (and what the listing or a lookup said about it) into an
//! [`Action`], and the copy step performs the actions.

use crate::bronze::layout::sensor_rel;
use crate::config::StreamMap;
use crate::identity::FileKey;
use crate::naming::SensorName;
use crate::source::{os_name, EntryKind};
use crate::store::event::{SkipReason, SourceVersion};
use chrono::NaiveDateTime;
use std::ffi::{OsStr, OsString};

/// One thing to do about one source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Copy it to `rel` under the Bronze root.
    Copy(CopyJob),
    /// Record that it is never copied, and why.
    Skip {
        key: FileKey,
        facts: Option<SourceVersion>,
        reason: SkipReason,
    },
}

/// A file to copy: where from (its key holds the raw name) and where to. Kept small: a first
/// ingest holds one per file of the share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyJob {
    pub key: FileKey,
    /// Destination relative to the Bronze root, built only from a parsed name.
    pub rel: String,
}

impl CopyJob {
    /// The name to open on the share.
    pub fn name(&self) -> OsString {
        // Jobs are built from names that parsed, so they are valid on every platform.
        os_name(&self.key.name).unwrap_or_default()
    }
}

/// Decides what to do with a share entry from its name and kind, and `horizon`: the latest
/// minute a name may carry to be copied now (the wall clock plus the future tolerance).
pub fn classify(
    name: &OsStr,
    kind: EntryKind,
    streams: &StreamMap,
    horizon: NaiveDateTime,
) -> Action {
    let key = FileKey::share(name.as_encoded_bytes());
    let parsed = match SensorName::parse_bytes(name.as_encoded_bytes()) {
        Ok(p) => p,
        Err(e) => {
            let reason = SkipReason::BadName {
                code: e.code().into(),
            };
            return Action::Skip {
                key,
                facts: None,
                reason,
            };
        }
    };
    let Some(alias) = streams.alias(&parsed.apartment) else {
        let reason = SkipReason::UnknownStream {
            apartment: parsed.apartment,
        };
        return Action::Skip {
            key,
            facts: None,
            reason,
        };
    };
    if kind != EntryKind::File {
        return Action::Skip {
            key,
            facts: None,
            reason: SkipReason::NotRegularFile,
        };
    }
    if parsed.minute > horizon {
        return Action::Skip {
            key,
            facts: None,
            reason: SkipReason::InFuture,
        };
    }
    Action::Copy(CopyJob {
        key,
        rel: sensor_rel(alias, &parsed),
    })
}

pub use crate::source::source_changed;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn streams() -> StreamMap {
        StreamMap::parse(&["JimmyLoup=jimmy".into(), "JeremieVianin=jeremie".into()]).unwrap()
    }

    /// A wall clock far after every name in these tests.
    fn horizon() -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2030, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
    }

    #[test]
    fn good_name_maps_to_the_seed_layout() {
        let name = OsStr::new("18.08.2023 1000_JimmyLoup_received.json");
        let Action::Copy(job) = classify(name, EntryKind::File, &streams(), horizon()) else {
            panic!()
        };
        assert_eq!(
            job.rel,
            "jimmy/2023/08/18/10/18.08.2023 1000_JimmyLoup_received.json"
        );
    }

    #[test]
    fn unknown_apartment_directory_and_bad_name_are_skipped_with_reasons() {
        let s = streams();
        let skip = |n: &str, k| match classify(OsStr::new(n), k, &s, horizon()) {
            Action::Skip { reason, .. } => reason.code(),
            Action::Copy(_) => "copy".into(),
        };
        assert_eq!(
            skip("18.08.2023 1000_Nobody_received.json", EntryKind::File),
            "unknown-stream"
        );
        assert_eq!(
            skip("18.08.2023 1000_JimmyLoup_received.json", EntryKind::Dir),
            "not-regular-file"
        );
        assert_eq!(
            skip(
                "18.08.2023 1000_JimmyLoup_received.json",
                EntryKind::Symlink
            ),
            "not-regular-file"
        );
        assert_eq!(skip("notes.txt", EntryKind::File), "bad-name:pattern");
        assert_eq!(
            skip("01.01.2099 0000_JimmyLoup_received.json", EntryKind::File),
            "in-future"
        );
    }

    proptest! {
        /// Discovery never panics on any name, and whatever it decides to copy lands strictly
        /// inside an alias folder, with no `..` or absolute part.
        #[test]
        fn arbitrary_names_never_escape_bronze(bytes in proptest::collection::vec(any::<u8>(), 0..60)) {
            #[cfg(unix)]
            let name = { use std::os::unix::ffi::OsStrExt; OsStr::from_bytes(&bytes).to_owned() };
            #[cfg(not(unix))]
            let name = OsString::from(String::from_utf8_lossy(&bytes).into_owned());
            if let Action::Copy(job) = classify(&name, EntryKind::File, &streams(), horizon()) {
                prop_assert!(job.rel.starts_with("jimmy/") || job.rel.starts_with("jeremie/"));
                prop_assert!(job.rel.split('/').all(|p| !p.is_empty() && p != ".." && p != "."));
                prop_assert_eq!(job.rel.split('/').count(), 6);
            }
        }
    }
}
