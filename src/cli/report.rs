//! What commands print: `log`, `status` and `gaps` each build one typed report and print it
//! either as text for people or, with `--json`, as JSON for scripts, from the same value, so a
//! field renamed in one form cannot leave the other printing blanks; `run --once --json` and
//! `replay --json` print typed documents through [`json`] too.

use chrono::NaiveDateTime;
use serde::Serialize;
use serde_json::Value;

/// The JSON form of a report, object keys in alphabetical order at every level. That is the
/// order these reports have always printed (they were built as `serde_json::Value`s, whose
/// objects are sorted maps: this crate does not enable serde_json's `preserve_order`), and
/// scripts and the goldens in `schema/reports/` may compare bytes; going through a `Value`
/// keeps it whatever order a struct, or a stored summary a report embeds, declares its fields in.
pub(super) fn json(report: &impl Serialize) -> Value {
    serde_json::to_value(report).expect("a report has string keys only")
}

/// An instant as RFC 3339 (UTC); `None` for one out of chrono's range.
pub(super) fn time(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339())
}

/// A naive local minute as the reports print it, `YYYY-MM-DDTHH:MM`.
pub(super) fn minute(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M").to_string()
}

/// A duration for people: `2d 3h`, `3h 5m`, `12m`.
pub(super) fn span(secs: i64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// `text` for a terminal line: control characters (a newline that would forge a line, an ESC
/// that would drive the terminal) are shown escaped (`\n`, `\u{1b}`); the rest unchanged.
/// For human output only; JSON output is escaped by the serializer.
pub(crate) fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}
