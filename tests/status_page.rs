//! Issue 28 in a real browser: the status page served by a running daemon (`/`, `/day/…`)
//! and the static report (`ingest report --html`), loaded in Debian's headless `chromium`
//! over a generated share with known outages. The DOM the browser built must mark exactly
//! the outage hours, carry the counts `gaps --json` reports for the same window, show a
//! hostile file name as text, read the same with JavaScript disabled, and paint a non-blank
//! screen at desktop and phone sizes. A missing `chromium` fails these tests: `tools/test`
//! installs it (tools/test-packages.txt).
//!
//! JavaScript is disabled by the page's own Content-Security-Policy, not by a browser flag:
//! chromium 156's `--blink-settings=scriptEnabled=false` makes headless `--dump-dom` and
//! `--screenshot` produce nothing at all, and `--disable-javascript` is not a switch of it
//! (a control page's script still ran). A control page below proves the policy stops scripts.

use crate::metrics::{daemon_with, http};
use crate::util::{on_real_clock, wait_for, Rig};
use chrono::{NaiveDate, NaiveDateTime};
use ingest::sample::{write_share, ShareSpec};
use serde_json::Value;
use std::process::Command;

/// A name that is markup if the page forgets to escape it.
const HOSTILE: &str = "<b id=pwned>evil & \"q\"<i>.json";

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d)
        .unwrap()
        .and_hms_opt(h, mi, 0)
        .unwrap()
}

/// Both apartments, 16–18 Aug 2023 whole; JimmyLoup misses 10:00–11:39 on the 16th, 01:00–01:02
/// and 09:20–09:59 on the 17th. Plus a file whose name is markup.
fn share(rig: &Rig) {
    let mut spec = ShareSpec::seed_like(0);
    spec.start = at(2023, 8, 16, 0, 0);
    spec.minutes = 3 * 1440;
    spec.gaps = vec![(600, 100), (1500, 3), (2000, 40)];
    write_share(&rig.share, &spec).unwrap();
    std::fs::write(rig.share.join(HOSTILE), b"{}").unwrap();
}

/// The hours the outages touch, with their missing minutes: what the page must mark.
fn outage_cells() -> Vec<(String, u32, String)> {
    [
        ("2023-08-16", 10, "60"),
        ("2023-08-16", 11, "40"),
        ("2023-08-17", 1, "3"),
        ("2023-08-17", 9, "40"),
    ]
    .map(|(d, h, n)| (d.to_owned(), h, n.to_owned()))
    .to_vec()
}

/// `chromium --headless` with its own profile (tests run in parallel), on the real clock;
/// `args` follow.
fn chromium(rig: &Rig, args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir_in(rig.dir.path()).unwrap();
    // The browser keeps the real clock (tools/test-shifted): only the pages carry dates.
    on_real_clock(&mut Command::new("chromium"))
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("chromium (Debian package chromium; tools/test installs it)")
}

/// The DOM chromium built from `url`.
fn dom(rig: &Rig, url: &str) -> String {
    let out = chromium(rig, &["--dump-dom", url]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.contains("</html>"),
        "chromium --dump-dom {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// A screenshot of `url` at `width`×`height`, as PNG bytes.
fn screenshot(rig: &Rig, url: &str, (width, height): (u32, u32), name: &str) -> Vec<u8> {
    let file = rig.dir.path().join(name);
    let out = chromium(
        rig,
        &[
            &format!("--screenshot={}", file.display()),
            &format!("--window-size={width},{height}"),
            url,
        ],
    );
    let png = std::fs::read(&file).unwrap_or_else(|e| {
        panic!(
            "no screenshot of {url} ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    png
}

/// Proves a screenshot is not blank: the PNG of a page with nothing on it, at the same size,
/// compresses to a small fraction of it (the page's text and cells do not compress away).
fn assert_not_blank(rig: &Rig, url: &str, size: (u32, u32)) {
    let blank = rig.dir.path().join("blank.html");
    std::fs::write(&blank, "<!doctype html><title>x</title><body></body>").unwrap();
    let empty = screenshot(
        rig,
        &format!("file://{}", blank.display()),
        size,
        "blank.png",
    );
    let page = screenshot(rig, url, size, &format!("page-{}x{}.png", size.0, size.1));
    assert!(
        page.len() > 5 * empty.len(),
        "the page's screenshot at {size:?} is {} bytes, a blank one {}",
        page.len(),
        empty.len()
    );
}

/// The `<section>` of `stream` in a DOM.
fn section<'a>(dom: &'a str, stream: &str) -> &'a str {
    let start = dom
        .find(&format!("data-stream=\"{stream}\""))
        .unwrap_or_else(|| panic!("no section for {stream}"));
    // Up to the next stream's section or the passes (a stream's section holds day sections).
    let end = ["<section class=\"stream\"", "<h2>Last passes"]
        .iter()
        .filter_map(|m| dom[start..].find(m))
        .min()
        .map_or(dom.len(), |e| start + e);
    &dom[start..end]
}

/// An attribute of the section's opening tag.
fn attr<'a>(section: &'a str, name: &str) -> &'a str {
    let tag = &section[..section.find('>').unwrap()];
    let at = tag.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
    &tag[at..at + tag[at..].find('"').unwrap()]
}

/// Every heatmap cell of a section: (day, hour, class, text).
fn cells(section: &str) -> Vec<(String, u32, String, String)> {
    let mut out = Vec::new();
    for row in section.split("<tr data-day=\"").skip(1) {
        let day = row[..10].to_owned();
        for (hour, td) in row.split("<td class=\"").skip(1).enumerate() {
            let class = td[..td.find('"').unwrap()].to_owned();
            let text = &td[td.find('>').unwrap() + 1..td.find("</td>").unwrap()];
            out.push((day.clone(), hour as u32, class, text.to_owned()));
        }
    }
    out
}

/// The cells showing missing minutes: (day, hour, missing).
fn marked(section: &str) -> Vec<(String, u32, String)> {
    cells(section)
        .into_iter()
        .filter(|(_, _, class, _)| class != "c4" && class != "cn")
        .map(|(day, hour, _, text)| (day, hour, text))
        .collect()
}

/// `gaps --json` over `[from, to]` (UTC, as the daemon and report run).
fn gaps(rig: &Rig, from: &str, to: &str) -> Value {
    let out = rig
        .cmd(&["gaps", "--json", "--since", from, "--until", to])
        .env("TZ", "UTC")
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Proves a section's window counts are `gaps --json`'s for the window the section names.
fn assert_counts_equal_gaps(rig: &Rig, dom: &str) {
    for stream in ["JimmyLoup", "JeremieVianin"] {
        let s = section(dom, stream);
        let doc = gaps(rig, attr(s, "data-from"), attr(s, "data-to"));
        let summary = doc["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["stream"] == stream)
            .unwrap();
        for key in ["expected", "present", "missing"] {
            assert_eq!(
                attr(s, &format!("data-{key}")),
                summary[key].to_string(),
                "{stream} {key}: {summary}"
            );
        }
        let cells_missing: u64 = marked(s)
            .iter()
            .map(|(_, _, n)| n.parse::<u64>().unwrap())
            .sum();
        assert_eq!(summary["missing"], cells_missing, "{stream}: cells add up");
    }
}

/// What both pages must show: the outage hours and only those marked (with their minutes as
/// text), the other stream clean, `gaps`' counts, every hour of the three days present, and
/// the hostile name as text, not as an element.
fn assert_page(rig: &Rig, dom: &str) {
    let jimmy = section(dom, "JimmyLoup");
    assert_eq!(marked(jimmy), outage_cells());
    assert_eq!(marked(section(dom, "JeremieVianin")), vec![]);
    assert_eq!(cells(jimmy).len(), 3 * 24);
    assert!(cells(jimmy).iter().all(|(_, _, class, _)| class != "cn"));
    assert_counts_equal_gaps(rig, dom);
    assert!(
        !dom.contains("id=\"pwned\""),
        "the hostile name became markup"
    );
    assert!(
        dom.contains("&lt;b id=pwned&gt;evil &amp; \"q\"&lt;i&gt;.json"),
        "the hostile name is shown as text"
    );
}

/// `run --scan` in UTC.
fn scan(rig: &Rig) {
    let out = rig
        .cmd(&["run", "--scan", "--min-age-secs", "0"])
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The daemon's `/` in a real browser: the outage cells are the marked ones, the counts are
/// `gaps --json`'s, the hostile name is text; the day link leads to the day's missing ranges;
/// the page paints at 1280×800 and 390×844. The share's dates are 2023: the page's window ends
/// at the index's newest minute, as `gaps` does, so the test holds on any date.
#[test]
fn the_daemon_page_marks_the_outages_in_a_real_browser() {
    let rig = Rig::new();
    share(&rig);
    scan(&rig);
    let (_daemon, addr) = daemon_with(&rig, "daemon.log", |c| {
        c.env("TZ", "UTC");
    });
    wait_for("the status page", || http(&addr, "GET", "/").0 == 200);
    let url = format!("http://{addr}/");
    let page = dom(&rig, &url);
    assert_page(&rig, &page);
    let jimmy = section(&page, "JimmyLoup");
    assert_eq!(attr(jimmy, "data-from"), "2023-08-16T00:00");
    assert_eq!(attr(jimmy, "data-to"), "2023-08-18T23:59");
    assert!(jimmy.contains("href=\"/day/JimmyLoup/2023-08-17\""));
    let day = dom(&rig, &format!("http://{addr}/day/JimmyLoup/2023-08-17"));
    let ranges: Vec<&str> = day.split("<tr class=\"gap\">").skip(1).collect();
    assert_eq!(ranges.len(), 2, "{day}");
    assert!(ranges[0].starts_with("<td>2023-08-17T01:00</td><td>2023-08-17T01:02</td><td>3</td>"));
    assert!(ranges[1].starts_with("<td>2023-08-17T09:20</td><td>2023-08-17T09:59</td><td>40</td>"));
    assert!(day.contains("data-missing=\"43\""), "{day}");
    assert_eq!(
        http(&addr, "GET", "/day/JimmyLoup/2023-07-01").0,
        404,
        "outside the window"
    );
    assert_not_blank(&rig, &url, (1280, 800));
    assert_not_blank(&rig, &url, (390, 844));
}

/// A script that, if it ran, would wipe the page.
const WIPE: &str = "<script>document.body.innerHTML='wiped'</script>";

/// The static report opens in the same browser with the same assertions; with JavaScript
/// disabled too: a copy with a page-wiping script appended reads the same, while the same
/// script does wipe a page without the report's policy (so the control can fail). Its day
/// links are anchors of sections in the same file (one per day with missing minutes), and it
/// names no external asset.
#[test]
fn the_static_report_reads_the_same_without_javascript() {
    let rig = Rig::new();
    share(&rig);
    scan(&rig);
    let file = rig.dir.path().join("report.html");
    let (since, until) = ("2023-08-16", "2023-08-18T23:59");
    let out = rig
        .cmd(&[
            "report",
            "--html",
            file.to_str().unwrap(),
            "--since",
            since,
            "--until",
            until,
        ])
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    for external in ["http://", "https://", "<script", "<link", "src="] {
        assert!(!text.contains(external), "{external} in the report");
    }
    let scripted = rig.dir.path().join("scripted.html");
    std::fs::write(
        &scripted,
        text.replace("</body>", &format!("{WIPE}</body>")),
    )
    .unwrap();
    let control = rig.dir.path().join("control.html");
    std::fs::write(
        &control,
        format!("<!doctype html><body><p>page</p>{WIPE}</body>"),
    )
    .unwrap();
    let wiped = dom(&rig, &format!("file://{}", control.display()));
    assert!(
        wiped.contains("<body>wiped</body>"),
        "the control's script ran: {wiped}"
    );
    let url = format!("file://{}", file.display());
    for page in [
        dom(&rig, &url),
        dom(&rig, &format!("file://{}", scripted.display())),
    ] {
        assert!(!page.contains("<body>wiped"), "a script ran on the report");
        assert_page(&rig, &page);
        let jimmy = section(&page, "JimmyLoup");
        for day in ["2023-08-16", "2023-08-17"] {
            let anchor = format!("d-JimmyLoup-{day}");
            assert!(
                jimmy.contains(&format!("href=\"#{anchor}\"")),
                "{day} links"
            );
            assert!(
                jimmy.contains(&format!("id=\"{anchor}\"")),
                "{day} has its section"
            );
        }
        assert!(
            !jimmy.contains("#d-JimmyLoup-2023-08-18"),
            "a complete day has no detail"
        );
    }
    assert_not_blank(&rig, &url, (1280, 800));
    assert_not_blank(&rig, &url, (390, 844));
}

/// While the share is gone, every stream's state on `/` is `unreachable:` with `/readyz`'s
/// own one-line reason (escaped); once it is back, the state leaves `unreachable`.
#[test]
fn the_page_says_unreachable_with_the_readyz_reason_while_the_share_is_gone() {
    let rig = Rig::new();
    share(&rig);
    scan(&rig);
    let (_daemon, addr) = daemon_with(&rig, "daemon.log", |c| {
        c.env("TZ", "UTC");
    });
    wait_for("the first pass", || http(&addr, "GET", "/readyz").0 == 200);
    assert!(!http(&addr, "GET", "/").1.contains("unreachable:"));
    let away = rig.dir.path().join("share.away");
    std::fs::rename(&rig.share, &away).unwrap();
    let mut why = String::new();
    wait_for("/readyz to say the share is gone", || {
        let (code, body) = http(&addr, "GET", "/readyz");
        why = body;
        code == 503
    });
    let reason = why.trim().strip_prefix("sensors: ").unwrap().to_owned();
    let escaped = reason
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;");
    let page = http(&addr, "GET", "/").1;
    let state = format!("<td class=state><span class=bad>unreachable: {escaped}</span>");
    assert_eq!(
        page.matches(&state).count(),
        2,
        "both streams: {reason}\n{page:.3000}"
    );
    std::fs::rename(&away, &rig.share).unwrap();
    wait_for("/readyz to recover", || {
        http(&addr, "GET", "/readyz").0 == 200
    });
    assert!(!http(&addr, "GET", "/").1.contains("unreachable:"));
}
