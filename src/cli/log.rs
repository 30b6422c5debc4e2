//! `ingest log`: the event log, oldest first, optionally since a time or for one file.

use super::since::parse_time;
use super::{escaped, Resolved};
use crate::error::Result;
use crate::identity::SourceId;
use crate::store::event::{Event, EventKind};
use crate::store::Store;
use clap::Args;
use serde_json::{json, Value};
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
    store.for_each_event(0, |seq, event| {
        let wanted_time = since_ms.is_none_or(|t| event.at_ms >= t);
        let wanted_file = args
            .file
            .as_deref()
            .is_none_or(|f| event.kind.file().is_some_and(|k| k.display_name() == f));
        if wanted_time && wanted_file {
            // A closed pipe (`| head`) just ends the listing.
            let line = if args.json {
                json_line(seq, &event)
            } else {
                text_line(seq, &event)
            };
            let _ = writeln!(out, "{line}");
        }
        Ok(())
    })?;
    let _ = out.flush();
    Ok(ExitCode::SUCCESS)
}

/// `log --json`'s line for one event.
fn json_line(seq: u64, event: &Event) -> String {
    event_json(seq, event).to_string()
}

/// `log`'s text line for one event.
fn text_line(seq: u64, event: &Event) -> String {
    human(&event_json(seq, event))
}

/// A flat JSON view of an event, stable for scripts.
pub fn event_json(seq: u64, event: &Event) -> Value {
    let at = chrono::DateTime::from_timestamp_millis(event.at_ms).map(|t| t.to_rfc3339());
    let mut doc = json!({"seq": seq, "at": at, "kind": event.kind.name()});
    if let Some(file) = event.kind.file() {
        doc["file"] = json!(file.display_name());
        doc["source"] = json!(source_name(file.source));
    }
    match &event.kind {
        EventKind::Copied {
            facts,
            hash,
            bronze,
            replaced,
            ..
        } => {
            doc["size"] = json!(facts.size);
            doc["mtime_ns"] = json!(facts.mtime_ns);
            doc["hash"] = json!(hash.to_hex());
            doc["bronze"] = json!(bronze);
            if let Some(r) = replaced {
                doc["replaced_hash"] = json!(r.hash.to_hex());
                doc["kept_as"] = json!(r.kept_as);
            }
        }
        EventKind::Adopted {
            facts,
            hash,
            bronze,
            ..
        } => {
            doc["size"] = json!(facts.size);
            doc["mtime_ns"] = json!(facts.mtime_ns);
            doc["hash"] = json!(hash.to_hex());
            doc["bronze"] = json!(bronze);
        }
        EventKind::Discovered { facts, reason, .. } => {
            doc["size"] = json!(facts.size);
            doc["reason"] = json!(format!("{reason:?}"));
        }
        EventKind::Skipped { facts, reason, .. } => {
            doc["size"] = json!(facts.map(|f| f.size));
            doc["reason"] = json!(reason.code());
        }
        EventKind::Failed { error, .. } => doc["error"] = json!(error),
        EventKind::ScanCompleted(s) => doc["summary"] = json!(s),
        EventKind::AuditFinding {
            finding,
            bronze,
            bronze_hash,
            source_hash,
            ..
        } => {
            doc["reason"] = json!(finding.code());
            doc["bronze"] = json!(bronze);
            doc["bronze_hash"] = json!(bronze_hash.map(|h| h.to_hex()));
            doc["source_hash"] = json!(source_hash.map(|h| h.to_hex()));
        }
        EventKind::AuditCompleted(s) => doc["summary"] = json!(s),
        EventKind::HookRun(h) => doc["summary"] = json!(h),
        EventKind::SourceFailed { source, error } => {
            doc["source"] = json!(source_name(*source));
            doc["error"] = json!(error);
        }
    }
    doc
}

fn source_name(source: SourceId) -> &'static str {
    match source {
        SourceId::Share => "share",
        SourceId::Weather => "weather",
    }
}

fn human(doc: &Value) -> String {
    let mut line = format!(
        "{:>8}  {}  {:<14}",
        doc["seq"],
        doc["at"].as_str().unwrap_or("?"),
        doc["kind"].as_str().unwrap_or("?")
    );
    for key in ["file", "bronze", "hash", "reason", "error", "kept_as"] {
        if let Some(v) = doc.get(key).and_then(Value::as_str) {
            // Names come from the share: never let one forge a line or drive the terminal.
            line.push_str(&format!("  {key}={}", escaped(v)));
        }
    }
    if let Some(s) = doc.get("summary") {
        line.push_str(&format!("  {s}"));
    }
    line
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
