//! The page as HTML: one document with inline CSS, server-rendered, no script and no external
//! asset (its [`CSP`] forbids both), so it opens offline, from a file share, and with
//! JavaScript disabled. Every name and
//! message from the store or the configuration goes through [`esc`]. Colour is never the only
//! signal: each heatmap cell shows its missing minutes as text, an hour with nothing is also
//! striped, and its `title` names the exact missing ranges.

use super::model::{mode_name, Cell, Page, StreamStatus};
use crate::gaps::{GapKind, StreamGaps};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use std::fmt::Write;

/// The page's Content-Security-Policy (in the document, and as the daemon's header): no
/// script runs on it and nothing is fetched, whatever text made it onto the page. It also
/// makes every browser that opens the page a browser with JavaScript disabled.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'";

/// Where a day's detail is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// The daemon's `/day/STREAM/YYYY-MM-DD` pages.
    Server,
    /// Sections of the same file (`#d-STREAM-YYYY-MM-DD`), written for days with something
    /// missing or late; a complete day has no link.
    InPage,
}

/// What the page is rendered against, beside its data.
#[derive(Debug, Clone)]
pub struct View {
    pub now: DateTime<Utc>,
    /// A stream whose newest minute is older than this is "silent".
    pub silent_after: Duration,
    /// The daemon's readiness, as `/readyz` says it; `None` for a static report, which has
    /// no daemon to ask.
    pub ready: Option<Result<(), String>>,
    /// Why the sensor flow's last pass failed (the share or Bronze unreachable), in the same
    /// words as `/readyz`: every stream shows it as its state.
    pub unreachable: Option<String>,
    pub links: Links,
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;padding:8px;max-width:1200px;color:#111}\
h1{font-size:1.4em}h2{font-size:1.15em;margin:1.2em 0 .3em}\
table{border-collapse:collapse}.facts td,.facts th,.list td,.list th{padding:2px 8px;text-align:left;border-bottom:1px solid #ddd}\
.scroll{overflow-x:auto;max-width:100%}\
.heat{font-size:11px}.heat th{font-weight:normal;padding:0 4px;white-space:nowrap}\
.heat td{width:22px;min-width:22px;height:18px;text-align:center;border:1px solid #fff;padding:0}\
.c4{background:#1a7f37;color:#fff}.c3{background:#9be9a8}.c2{background:#f2cc60}\
.c1{background:#f0883e}.c0{background:repeating-linear-gradient(45deg,#cf222e 0 4px,#a40e26 4px 8px);color:#fff;font-weight:bold}\
.cn{background:repeating-linear-gradient(45deg,#eee 0 3px,#fff 3px 6px)}\
.legend span{display:inline-block;min-width:22px;padding:0 6px;margin:2px;text-align:center;border:1px solid #888}\
.ok{color:#1a7f37}.bad{color:#cf222e;font-weight:bold}\
@media(max-width:600px){body{font-size:13px}.facts th,.facts td{padding:2px 4px}}";

/// The legend: each class, its glyph, and the share of expected minutes it stands for.
const LEGEND: [(&str, &str, &str); 6] = [
    ("c4", "\u{b7}", "100 % present"),
    ("c3", "n", "90\u{2013}99 % present (n = missing minutes)"),
    ("c2", "n", "50\u{2013}89 %"),
    ("c1", "n", "1\u{2013}49 %"),
    ("c0", "60", "0 %: nothing arrived (striped)"),
    (
        "cn",
        "",
        "no minute expected (outside the window, not yet due)",
    ),
];

/// The status page.
pub fn page(p: &Page, v: &View) -> String {
    let mut out = String::with_capacity(64 * 1024);
    head(&mut out, "ingest status");
    let _ = write!(
        out,
        "<h1>ingest status</h1><p>Built {} UTC",
        stamp(p.built_at)
    );
    match &v.ready {
        Some(Ok(())) => out.push_str(" \u{b7} <span class=ok>ready</span>"),
        Some(Err(why)) => {
            let _ = write!(
                out,
                " \u{b7} <span class=bad>not ready: {}</span>",
                esc(why)
            );
        }
        None => out.push_str(" \u{b7} static report"),
    }
    out.push_str("</p>");
    legend(&mut out);
    if p.streams.is_empty() {
        out.push_str("<p>No sensor stream is configured.</p>");
    }
    for s in &p.streams {
        stream(&mut out, s, v);
    }
    passes(&mut out, p);
    problems(&mut out, p);
    out.push_str("</body></html>\n");
    out
}

/// One day of one stream: its missing runs and late files (`/day/STREAM/YYYY-MM-DD`).
pub fn day_page(stream: &str, date: NaiveDate, day: &StreamGaps) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let title = format!("{} {date}", esc(stream));
    head(&mut out, &title);
    let _ = write!(
        out,
        "<p><a href=\"/\">\u{2190} status</a></p><h1>{title}</h1>"
    );
    day_body(&mut out, day);
    out.push_str("</body></html>\n");
    out
}

fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta http-equiv=Content-Security-Policy content=\"{CSP}\">\
         <meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body>"
    );
}

fn legend(out: &mut String) {
    out.push_str("<p class=legend id=legend>Each cell is one hour of a day; its text is the number of missing minutes, its tooltip the hour, present/expected minutes and the missing ranges. ");
    for (class, glyph, meaning) in LEGEND {
        let _ = write!(out, "<span class={class}>{glyph}</span> {meaning} ");
    }
    out.push_str("</p>");
}

fn stream(out: &mut String, s: &StreamStatus, v: &View) {
    let w = &s.window;
    let (from, to) = w.window.map_or((String::new(), String::new()), |(a, b)| {
        (minute(a), minute(b))
    });
    let _ = write!(
        out,
        "<section class=stream id=\"s-{id}\" data-stream=\"{name}\" data-from=\"{from}\" data-to=\"{to}\" \
         data-expected={} data-present={} data-missing={}><h2>{name} ({alias})</h2>",
        w.expected,
        w.present,
        w.missing,
        id = esc(&s.stream),
        name = esc(&s.stream),
        alias = esc(&s.alias),
    );
    facts(out, s, v);
    heatmap(out, s, v.links);
    if v.links == Links::InPage {
        for (date, cells) in s.heatmap() {
            if cells.iter().any(|c| c.missing_minutes() > 0) || late_on(w, date) {
                day_section(out, s, date);
            }
        }
    }
    out.push_str("</section>");
}

fn facts(out: &mut String, s: &StreamStatus, v: &View) {
    let age = s.newest_at.map(|at| v.now - at);
    let state = match (&v.unreachable, age) {
        (Some(why), _) => format!("<span class=bad>unreachable: {}</span>", esc(why)),
        (_, None) => "<span class=bad>no file yet</span>".to_owned(),
        (_, Some(age)) if age > v.silent_after => format!(
            "<span class=bad>silent since {}</span>",
            s.newest
                .map(|n| minute(n + Duration::minutes(1)))
                .unwrap_or_default()
        ),
        _ => "<span class=ok>ok</span>".to_owned(),
    };
    let newest = s.newest.map(minute).unwrap_or_else(|| "\u{2013}".into());
    let age = age.map(duration).unwrap_or_else(|| "\u{2013}".into());
    let _ = write!(
        out,
        "<table class=facts><tr><th>newest minute</th><td>{newest}</td></tr>\
         <tr><th>age</th><td>{age}</td></tr><tr><th>state</th><td class=state>{state}</td></tr>\
         <tr><th>ingested today</th><td>{} files, {}</td></tr><tr><th>complete</th><td>",
        s.files_today,
        bytes(s.bytes_today)
    );
    for (i, ((present, expected), label)) in
        s.recent.iter().zip(["24 h", "7 d", "30 d"]).enumerate()
    {
        let sep = if i == 0 { "" } else { " \u{b7} " };
        let _ = write!(
            out,
            "{sep}{label}: {} ({present}/{expected})",
            percent(*present, *expected)
        );
    }
    let w = &s.window;
    let _ = write!(
        out,
        "</td></tr><tr><th>window</th><td>{} missing of {} expected, {} late</td></tr></table>",
        w.missing,
        w.expected,
        w.late.len()
    );
}

fn heatmap(out: &mut String, s: &StreamStatus, links: Links) {
    out.push_str("<div class=scroll><table class=heat><thead><tr><th>day</th>");
    for h in 0..24 {
        let _ = write!(out, "<th>{h:02}</th>");
    }
    out.push_str("</tr></thead><tbody>");
    for (date, cells) in s.heatmap() {
        let label = date.format("%m-%d");
        let _ = write!(out, "<tr data-day={date}><th>");
        let something = cells.iter().any(|c| c.missing_minutes() > 0) || late_on(&s.window, date);
        match links {
            Links::Server => {
                let _ = write!(
                    out,
                    "<a href=\"/day/{}/{date}\">{label}</a>",
                    url(&s.stream)
                );
            }
            Links::InPage if something => {
                let _ = write!(out, "<a href=\"#{}\">{label}</a>", day_id(&s.stream, date));
            }
            Links::InPage => {
                let _ = write!(out, "{label}");
            }
        }
        out.push_str("</th>");
        for c in &cells {
            cell(out, c);
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
}

fn cell(out: &mut String, c: &Cell) {
    let (class, text) = match (c.expected, c.missing_minutes()) {
        (0, _) => ("cn", String::new()),
        (_, 0) => ("c4", "\u{b7}".to_owned()),
        (e, m) if m == e => ("c0", m.to_string()),
        (e, m) if m * 10 <= e => ("c3", m.to_string()),
        (e, m) if m * 2 <= e => ("c2", m.to_string()),
        (_, m) => ("c1", m.to_string()),
    };
    // Compact on purpose (4,320 cells for 2 streams × 90 days): the row names the day, the
    // legend says what the numbers are; `</td>` is optional in HTML.
    let _ = write!(
        out,
        "<td class={class} title=\"{:02}h: {}/{}",
        c.hour, c.present, c.expected
    );
    for (i, (a, b)) in c.missing.iter().enumerate() {
        out.push_str(if i == 0 { "; missing " } else { ", " });
        out.push_str(&a.format("%H:%M").to_string());
        if b > a {
            let _ = write!(out, "\u{2013}{}", b.format("%H:%M"));
        }
    }
    let _ = write!(out, "\">{text}");
}

fn day_section(out: &mut String, s: &StreamStatus, date: NaiveDate) {
    let Some(day) = s.day_of(date) else { return };
    let _ = write!(
        out,
        "<section class=day id=\"{}\"><h3>{} {date}</h3>",
        day_id(&s.stream, date),
        esc(&s.stream)
    );
    day_body(out, &day);
    out.push_str("</section>");
}

fn day_body(out: &mut String, day: &StreamGaps) {
    let _ = write!(
        out,
        "<p class=daysum data-expected={} data-present={} data-missing={}>{} of {} expected minutes present, {} missing, {} late.</p>",
        day.expected, day.present, day.missing, day.present, day.expected, day.missing, day.late.len()
    );
    if day.missing > 0 {
        out.push_str("<table class=list><tr><th>missing from</th><th>to</th><th>minutes</th></tr>");
    }
    for g in day.gaps.iter().filter(|g| g.kind == GapKind::Missing) {
        let _ = write!(
            out,
            "<tr class=gap><td>{}</td><td>{}</td><td>{}</td></tr>",
            minute(g.from),
            minute(g.to),
            g.minutes
        );
    }
    out.push_str(
        "</table><table class=list><tr><th>late file</th><th>ingested</th><th>delay</th></tr>",
    );
    for l in &day.late {
        let _ = write!(
            out,
            "<tr class=late><td>{}</td><td>{} UTC</td><td>{}</td></tr>",
            esc(&l.file),
            stamp(l.ingested_at),
            duration(l.delay)
        );
    }
    out.push_str("</table>");
}

fn passes(out: &mut String, p: &Page) {
    out.push_str("<h2>Last passes</h2><div class=scroll><table class=list id=passes><tr><th>finished (UTC)</th><th>mode</th><th>copied</th><th>skipped</th><th>failed</th><th>duration</th></tr>");
    for (at, s) in &p.passes {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1} s</td></tr>",
            stamp(*at),
            mode_name(s),
            s.copied,
            s.skipped,
            s.failed,
            s.millis as f64 / 1000.0
        );
    }
    out.push_str("</table></div>");
}

fn problems(out: &mut String, p: &Page) {
    out.push_str("<h2>Last problems</h2><div class=scroll><table class=list id=problems><tr><th>when (UTC)</th><th>what</th><th>file or source</th><th>detail</th></tr>");
    for e in &p.problems {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=subject>{}</td><td>{}</td></tr>",
            stamp(e.at),
            esc(&e.what),
            esc(&e.subject),
            esc(&e.detail)
        );
    }
    out.push_str("</table></div>");
}

fn late_on(w: &StreamGaps, date: NaiveDate) -> bool {
    w.late.iter().any(|l| l.minute.date() == date)
}

/// The in-page anchor of a day (static report).
fn day_id(stream: &str, date: NaiveDate) -> String {
    format!("d-{}-{date}", esc(stream))
}

/// Escapes text for HTML content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A stream name as one URL path segment.
pub fn url(stream: &str) -> String {
    utf8_percent_encode(stream, NON_ALPHANUMERIC).to_string()
}

fn minute(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M").to_string()
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn percent(present: u64, expected: u64) -> String {
    if expected == 0 {
        "\u{2013}".into()
    } else {
        format!("{:.2} %", present as f64 * 100.0 / expected as f64)
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn duration(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        s if s >= 86_400 => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}
