//! `ingest log`: the event log, oldest first, optionally since a time or for one file. Each
//! event prints as one [`LogLine`]: a text line, or with `--json` one JSON object per line.

use super::since::parse_time;
use super::{escaped, report, Resolved};
use crate::error::Result;
use crate::identity::ContentHash;
use crate::store::event::{
    AuditSummary, Event, EventKind, HookSummary, Replaced, ScanSummary, SourceVersion,
};
use crate::store::Store;
use clap::Args;
use serde::Serialize;
use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::process::ExitCode;

#[derive(Args, Debug, Clone)]
pub struct LogArgs {
    /// Only events at or after this time (YYYY-MM-DD, YYYY-MM-DDTHH:MM local, or RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Only events about this file name (its whole history).
    #[arg(long)]
    pub file: Option<String>,
    /// Only events after this sequence number: a consumer's checkpoint, the last `seq` it
    /// processed (read from the store, without walking the events before it).
    #[arg(long, value_name = "SEQ")]
    pub after: Option<u64>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cfg: &Resolved, args: &LogArgs) -> Result<ExitCode> {
    let since_ms = args
        .since
        .as_deref()
        .map(parse_time)
        .transpose()?
        .map(|t| t.timestamp_millis());
    let store = Store::open_existing(&cfg.state, cfg.store_wait)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let from = args.after.map_or(0, |seq| seq.saturating_add(1));
    store.for_each_event(from, |seq, event| {
        let wanted_time = since_ms.is_none_or(|t| event.at_ms >= t);
        let wanted_file = args
            .file
            .as_deref()
            .is_none_or(|f| event.kind.file().is_some_and(|k| k.display_name() == f));
        if wanted_time && wanted_file {
            let line = LogLine::of(seq, &event);
            // A closed pipe (`| head`) just ends the listing.
            let _ = if args.json {
                writeln!(out, "{}", report::json(&line))
            } else {
                writeln!(out, "{line}")
            };
        }
        Ok(())
    })?;
    let _ = out.flush();
    Ok(ExitCode::SUCCESS)
}

/// One event as `log` prints it: a flat view, stable for scripts. Its keys are `seq`, `at`
/// and `kind`, the file's (`file`, `source`) when the event is about one, then its kind's.
#[derive(Serialize)]
struct LogLine<'a> {
    seq: u64,
    /// `None` (JSON `null`, text `?`) for a time out of chrono's range.
    at: Option<String>,
    kind: &'static str,
    #[serde(flatten)]
    file: Option<FileOf>,
    #[serde(flatten)]
    detail: Detail<'a>,
}

/// The file an event is about: its name for humans and its source.
#[derive(Serialize)]
struct FileOf {
    file: String,
    source: Cow<'static, str>,
}

/// What each kind of event adds to its line. A variant's fields are exactly its keys: an
/// `Option` prints `null`, it is never left out.
#[derive(Serialize)]
#[serde(untagged)]
enum Detail<'a> {
    /// Copied or adopted.
    Ingested(Ingested<'a>),
    /// `reason` is the defer reason's variant name (`TooYoung`).
    Discovered {
        size: u64,
        reason: String,
    },
    /// `reason` is the skip reason's code (`bad-name:pattern`).
    Skipped {
        size: Option<u64>,
        reason: String,
    },
    Failed {
        error: &'a str,
    },
    /// An audit finding; `reason` is its code (`bronze-corrupt`).
    Finding {
        reason: &'static str,
        bronze: &'a str,
        bronze_hash: Option<String>,
        source_hash: Option<String>,
    },
    /// A pass, an audit or a hook run, with its stored summary whole.
    Completed {
        summary: StoredSummary<'a>,
    },
    SourceFailed {
        source: Cow<'static, str>,
        error: &'a str,
    },
    /// A feed of the config file given its id in this store.
    FeedDeclared {
        feed: &'a str,
        id: u16,
        pattern: &'a str,
        cadence_minutes: u32,
    },
}

/// A copied or adopted file: its source version, its hash and where it is in Bronze.
#[derive(Serialize)]
struct Ingested<'a> {
    size: u64,
    mtime_ns: i64,
    hash: String,
    bronze: &'a str,
    /// Only a copy that replaced different bytes at its Bronze path has these keys.
    #[serde(flatten)]
    replaced: Option<ReplacedOf<'a>>,
}

#[derive(Serialize)]
struct ReplacedOf<'a> {
    replaced_hash: String,
    kept_as: &'a str,
}

/// The summary a pass, an audit or a hook run stored.
#[derive(Serialize)]
#[serde(untagged)]
enum StoredSummary<'a> {
    Scan(&'a ScanSummary),
    Audit(&'a AuditSummary),
    Hook(&'a HookSummary),
}

impl<'a> LogLine<'a> {
    fn of(seq: u64, event: &'a Event) -> Self {
        let file = event.kind.file().map(|key| FileOf {
            file: key.display_name(),
            source: key.source.name(),
        });
        LogLine {
            seq,
            at: report::time(event.at_ms),
            kind: event.kind.name(),
            file,
            detail: Detail::of(&event.kind),
        }
    }
}

/// `SEQ  AT  KIND  key=value…  {summary}`. The sequence number is not padded: the text has
/// never padded it (it was formatted through serde_json, which ignores widths).
impl fmt::Display for LogLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.at.as_deref().unwrap_or("?");
        write!(f, "{}  {at}  {:<14}", self.seq, self.kind)?;
        let file = self.file.as_ref().map(|of| ("file", of.file.as_str()));
        for (key, value) in file.into_iter().chain(self.detail.labelled()) {
            // Names come from the share: never let one forge a line or drive the terminal.
            write!(f, "  {key}={}", escaped(value))?;
        }
        if let Detail::Completed { summary } = &self.detail {
            write!(f, "  {}", report::json(summary))?;
        }
        Ok(())
    }
}

impl<'a> Detail<'a> {
    fn of(kind: &'a EventKind) -> Self {
        let hex = |h: Option<ContentHash>| h.map(ContentHash::to_hex);
        match kind {
            EventKind::Copied {
                facts,
                hash,
                bronze,
                replaced,
                ..
            } => Detail::Ingested(Ingested::of(facts, *hash, bronze, replaced.as_ref())),
            EventKind::Adopted {
                facts,
                hash,
                bronze,
                ..
            } => Detail::Ingested(Ingested::of(facts, *hash, bronze, None)),
            EventKind::Discovered { facts, reason, .. } => Detail::Discovered {
                size: facts.size,
                reason: format!("{reason:?}"),
            },
            EventKind::Skipped { facts, reason, .. } => Detail::Skipped {
                size: facts.map(|f| f.size),
                reason: reason.code(),
            },
            EventKind::Failed { error, .. } => Detail::Failed { error },
            EventKind::AuditFinding {
                finding,
                bronze,
                bronze_hash,
                source_hash,
                ..
            } => Detail::Finding {
                reason: finding.code(),
                bronze,
                bronze_hash: hex(*bronze_hash),
                source_hash: hex(*source_hash),
            },
            EventKind::SourceFailed { source, error } => Detail::SourceFailed {
                source: source.name(),
                error,
            },
            EventKind::ScanCompleted(s) => Detail::completed(StoredSummary::Scan(s)),
            EventKind::AuditCompleted(s) => Detail::completed(StoredSummary::Audit(s)),
            EventKind::HookRun(h) => Detail::completed(StoredSummary::Hook(h)),
            EventKind::FeedDeclared(d) => Detail::FeedDeclared {
                feed: &d.name,
                id: d.id.0,
                pattern: &d.pattern,
                cadence_minutes: d.cadence_minutes,
            },
        }
    }

    fn completed(summary: StoredSummary<'a>) -> Self {
        Detail::Completed { summary }
    }

    /// This kind's `key=value` parts of the text line, in the order the text has always shown
    /// them: `bronze`, `hash`, `reason`, `error`, `kept_as`.
    fn labelled(&self) -> Vec<(&'static str, &str)> {
        match self {
            Detail::Ingested(i) => {
                let mut parts = vec![("bronze", i.bronze), ("hash", i.hash.as_str())];
                parts.extend(i.replaced.as_ref().map(|r| ("kept_as", r.kept_as)));
                parts
            }
            Detail::Discovered { reason, .. } | Detail::Skipped { reason, .. } => {
                vec![("reason", reason)]
            }
            Detail::Finding { reason, bronze, .. } => vec![("bronze", bronze), ("reason", reason)],
            Detail::Failed { error } | Detail::SourceFailed { error, .. } => vec![("error", error)],
            Detail::Completed { .. } => Vec::new(),
            Detail::FeedDeclared { feed, pattern, .. } => {
                vec![("feed", feed), ("pattern", pattern)]
            }
        }
    }
}

impl<'a> Ingested<'a> {
    fn of(
        facts: &SourceVersion,
        hash: ContentHash,
        bronze: &'a str,
        replaced: Option<&'a Replaced>,
    ) -> Self {
        Ingested {
            size: facts.size,
            mtime_ns: facts.mtime_ns,
            hash: hash.to_hex(),
            bronze,
            replaced: replaced.map(|r| ReplacedOf {
                replaced_hash: r.hash.to_hex(),
                kept_as: &r.kept_as,
            }),
        }
    }
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
